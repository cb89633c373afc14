taskyard::include_app!();

#[tokio::main]
async fn main() -> taskyard::Result<()> {
    app().serve().await
}
