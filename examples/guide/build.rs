fn main() {
    taskyard_build::generate();
}
