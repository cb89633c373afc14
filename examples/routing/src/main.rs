//! Serves the routing example.

#[tokio::main]
async fn main() {
    if let Err(error) = routing_example::routing_app().serve().await {
        eprintln!("routing-example: {error}");
        std::process::exit(1);
    }
}
