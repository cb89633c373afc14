taskyard::include_app!();

#[tokio::main]
async fn main() -> std::process::ExitCode {
    app().main().await
}
