pub async fn handler() -> &'static str {
    "Hello from taskyard! POST /_tasks/greet/runs to run a task.\n"
}
