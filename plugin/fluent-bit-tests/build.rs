// The native plugin finds flb_filter_get_property / flb_filter_set_context with
// dlsym(RTLD_DEFAULT) in the executable, as in Fluent Bit (built with ENABLE_EXPORTS): the
// test and bench executables define them and must export them the same way.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-tests=-rdynamic");
    println!("cargo:rustc-link-arg-bins=-rdynamic");
}
