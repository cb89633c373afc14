pub async fn handler() -> &'static str {
    "about"
}
