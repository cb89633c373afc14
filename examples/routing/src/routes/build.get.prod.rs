pub async fn handler() -> &'static str {
    "prod"
}
