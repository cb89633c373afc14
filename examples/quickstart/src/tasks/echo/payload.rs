//! `echo:payload`: returns its payload, as in Nitro's docs.

use taskyard::prelude::*;

pub fn task() -> Task {
    Task::new(|_cx: TaskContext, payload: Value| async move { Ok::<_, TaskError>(payload) })
        .description("Returns the provided payload")
}
