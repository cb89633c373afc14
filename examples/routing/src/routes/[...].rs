use taskyard::route::Event;

pub async fn handler(event: Event) -> String {
    format!("default {:?}", event.param("_"))
}
