// A payload whose JsonSchema comes from another schemars version (here a stand-in for
// schemars 0.8, whose trait has the same name).
mod schemars08 {
    pub trait JsonSchema {}
}

use serde::Deserialize;
use taskyard::{Task, TaskContext, TaskError};

#[derive(Deserialize)]
pub struct Resize {
    pub width: u32,
}

impl schemars08::JsonSchema for Resize {}

pub fn task() -> Task {
    Task::new(|_cx: TaskContext, resize: Resize| async move { Ok::<_, TaskError>(resize.width) })
}

fn main() {
    drop(task());
}
