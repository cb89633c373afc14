//! What a developer reads when a task's body or payload type is not accepted: the
//! compiler's message names what is missing (the derives, the schemars version), not
//! only an unsatisfied trait bound.

#[test]
fn task_bodies_that_cannot_be_tasks_say_why() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
