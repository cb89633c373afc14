use taskyard::route::Event;

pub async fn handler(event: Event) -> String {
    format!("{} catch-all {:?}", event.method(), event.param("path"))
}
