pub async fn handler() -> &'static str {
    "get item"
}
