use taskyard::route::Event;

pub async fn handler(event: Event) -> String {
    format!("{}/{}", event.param("org").unwrap_or("?"), event.param("repo").unwrap_or("?"))
}
