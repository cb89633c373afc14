pub async fn handler() -> &'static str {
    "post item"
}
