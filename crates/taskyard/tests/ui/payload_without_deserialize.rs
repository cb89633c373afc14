// A payload type that derives JsonSchema but not Deserialize.
use taskyard::prelude::*;

#[derive(JsonSchema)]
pub struct Greet {
    pub name: String,
}

pub fn task() -> Task {
    Task::new(|_cx: TaskContext, greet: Greet| async move { Ok::<_, TaskError>(greet.name) })
}

fn main() {
    drop(task());
}
