// A payload type that derives Deserialize but not JsonSchema.
use serde::Deserialize;
use taskyard::prelude::*;

#[derive(Deserialize)]
pub struct Greet {
    pub name: String,
}

pub fn task() -> Task {
    Task::new(|_cx: TaskContext, greet: Greet| async move { Ok::<_, TaskError>(greet.name) })
}

fn main() {
    drop(task());
}
