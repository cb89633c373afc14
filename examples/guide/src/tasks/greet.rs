use serde::Deserialize;
use taskyard::prelude::*;

#[derive(Deserialize, JsonSchema)]
pub struct Greet {
    pub name: String,
    #[serde(default = "once")]
    pub times: u32,
}

fn once() -> u32 {
    1
}

pub fn task() -> Task {
    Task::new(|_cx: TaskContext, greet: Greet| async move {
        let line = format!("Hello, {}!", greet.name);
        Ok::<_, TaskError>(json!({ "greeting": vec![line; greet.times as usize] }))
    })
    .description("Greets someone, as many times as asked")
}
