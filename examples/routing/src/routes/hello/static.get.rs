pub async fn handler() -> &'static str {
    "static"
}
