//! `vector` with the `sigma_tag` transform compiled in: Vector's own entry point, plus one
//! module. Nothing in Vector is patched.

mod sigma_tag;

fn main() {
    let status = vector::app::Application::run(vector::extra_context::ExtraContext::default());
    std::process::exit(status.code().unwrap_or(1));
}
