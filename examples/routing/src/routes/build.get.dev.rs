pub async fn handler() -> &'static str {
    "dev"
}
