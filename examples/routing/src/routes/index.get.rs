pub async fn handler() -> &'static str {
    "home"
}
