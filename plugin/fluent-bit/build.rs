// Fluent Bit's WAMR allocates record copies with the module's own `malloc` when it exports
// one; otherwise it uses a small fixed app heap and silently loses records that do not fit.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--export=malloc");
        println!("cargo:rustc-link-arg-cdylib=--export=free");
    }
}
