//! Emulators of Fluent Bit's two plugin hosts, for tests and benchmarks.
//!
//! - [`WasmHost`]: filter_wasm in JSON mode, as `src/wasm/flb_wasm.c` does it (facts in
//!   `shared/design/PLUGINS.md`): one instance kept for the run, WASI with the
//!   `Accessible_Paths` directories pre-opened under their own path, `_initialize` run once,
//!   each record copied in with the module's `malloc` plus a trailing NUL, the six-i32 call,
//!   the result read back as a NUL-terminated string, both copies freed.
//! - [`SoHost`]: dlopen of `flb-filter_sigmatag.so`, the registration struct read as Fluent
//!   Bit's `flb_plugin_load` does (copy of `sizeof(struct flb_filter_plugin)`), `cb_init`
//!   with an instance whose properties answer `flb_filter_get_property`, `cb_filter` on
//!   msgpack chunks, the output freed with `free()`.
#![allow(clippy::missing_safety_doc)]

pub mod decode;

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use wasmi::{Engine, Linker, Memory, Module, Store, TypedFunc};
use wasmi_wasi::{ambient_authority, Dir, WasiCtx, WasiCtxBuilder};

/// Where a built artifact is: `$var`, else `None` with a message (a failure under CI=true).
pub fn artifact(var: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).map(PathBuf::from) {
        if p.is_file() {
            return Some(p);
        }
    }
    let msg = format!("{var} is not set to a built file: run .ci/fluent-bit.sh (it builds the .wasm and the .so and sets it)");
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("{msg} (CI=true: a missing artifact is a failure)");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// A byte sink shared with the guest's stderr.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().map(|v| v.clone()).unwrap_or_default()).into_owned()
    }
}

/// What Fluent Bit does with a record after the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The function returned the record pointer: the record is unchanged.
    Kept,
    /// A new body (a JSON object).
    New(Vec<u8>),
    /// `""`: the record is dropped.
    Dropped,
}

/// A compiled module (compile once, instantiate per test).
pub fn compile(wasm: &Path) -> (Engine, Module) {
    let bytes = std::fs::read(wasm).expect("read .wasm");
    let engine = Engine::default();
    let module = Module::new(&engine, &bytes[..]).expect("valid wasm module");
    (engine, module)
}

/// filter_wasm's side of one filter instance.
pub struct WasmHost {
    store: Store<WasiCtx>,
    memory: Memory,
    malloc: TypedFunc<i32, i32>,
    free: TypedFunc<i32, ()>,
    filter: TypedFunc<(i32, i32, i32, i32, i32, i32), i32>,
    /// The module's stderr.
    pub stderr: Captured,
}

impl WasmHost {
    /// Instantiates with `dirs` pre-opened (each under its own absolute path, as WAMR does
    /// with `Accessible_Paths`) and runs `_initialize`.
    pub fn new(engine: &Engine, module: &Module, dirs: &[&Path], function: &str) -> WasmHost {
        let pairs: Vec<(&Path, &Path)> = dirs.iter().map(|d| (*d, *d)).collect();
        WasmHost::with_guest_paths(engine, module, &pairs, function)
    }

    /// Instantiates with each host directory pre-opened under a guest path (filter_wasm
    /// pre-opens "." when `Accessible_Paths` is not set).
    pub fn with_guest_paths(
        engine: &Engine,
        module: &Module,
        dirs: &[(&Path, &Path)],
        function: &str,
    ) -> WasmHost {
        let stderr = Captured::default();
        let mut b = WasiCtxBuilder::new();
        b.stderr(Box::new(wasmi_wasi::wasi_common::pipe::WritePipe::new(
            stderr.clone(),
        )));
        for (d, guest) in dirs {
            let dir = Dir::open_ambient_dir(d, ambient_authority()).expect("open pre-opened dir");
            b.preopened_dir(dir, guest).expect("pre-open");
        }
        let mut store = Store::new(engine, b.build());
        let mut linker = Linker::<WasiCtx>::new(engine);
        wasmi_wasi::add_to_linker(&mut linker, |c| c).expect("WASI imports");
        let instance = linker
            .instantiate_and_start(&mut store, module)
            .expect("instantiate");
        if let Ok(init) = instance.get_typed_func::<(), ()>(&store, "_initialize") {
            init.call(&mut store, ())
                .expect("_initialize must not trap");
        }
        let memory = instance
            .get_memory(&store, "memory")
            .expect("memory export");
        let malloc = instance
            .get_typed_func(&store, "malloc")
            .expect("the module must export malloc (else records over the 8 KB app heap are lost)");
        let free = instance
            .get_typed_func(&store, "free")
            .expect("free export");
        let filter = instance
            .get_typed_func(&store, function)
            .expect("filter function export");
        WasmHost {
            store,
            memory,
            malloc,
            free,
            filter,
            stderr,
        }
    }

    fn dup(&mut self, bytes: &[u8]) -> i32 {
        let p = self
            .malloc
            .call(&mut self.store, bytes.len() as i32 + 1)
            .expect("malloc trapped");
        assert!(p != 0, "module malloc failed");
        let mem = self.memory.data_mut(&mut self.store);
        let at = p as u32 as usize;
        mem[at..at + bytes.len()].copy_from_slice(bytes);
        mem[at + bytes.len()] = 0;
        p
    }

    /// Runs one record through the filter as filter_wasm does. Panics where real Fluent
    /// Bit would abort or lose the record to a trap.
    pub fn call(&mut self, tag: &str, record: &[u8]) -> Outcome {
        let t = self.dup(tag.as_bytes());
        let r = self.dup(record);
        let ret = self.call_raw(t, tag.len() as i32, r, record.len() as i32);
        let out = self.read_cstr(ret);
        self.free.call(&mut self.store, t).expect("free trapped");
        self.free.call(&mut self.store, r).expect("free trapped");
        if ret == r {
            return Outcome::Kept;
        }
        if out.is_empty() {
            return Outcome::Dropped;
        }
        match serde_json::from_slice::<serde_json::Value>(&out) {
            Ok(v) if v.is_object() => Outcome::New(out),
            _ => panic!(
                "the module returned something that is not a JSON object (Fluent Bit would abort): {}",
                String::from_utf8_lossy(&out[..out.len().min(200)])
            ),
        }
    }

    /// The module's linear memory size in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory.data(&self.store).len()
    }

    /// The call with raw pointers (for `record = 0`).
    pub fn call_raw(&mut self, tag: i32, tag_len: i32, record: i32, record_len: i32) -> i32 {
        self.filter
            .call(
                &mut self.store,
                (tag, tag_len, 1_700_000_000, 5, record, record_len),
            )
            .expect("the filter trapped: Fluent Bit would lose the record")
    }

    /// The NUL-terminated string at `ptr` (which must lie in memory).
    pub fn read_cstr(&self, ptr: i32) -> Vec<u8> {
        let mem = self.memory.data(&self.store);
        let at = ptr as u32 as usize;
        assert!(at < mem.len(), "returned pointer outside memory");
        let len = mem[at..]
            .iter()
            .position(|&b| b == 0)
            .expect("returned string is not NUL-terminated");
        mem[at..at + len].to_vec()
    }
}

// ---- the native plugin ----

/// Mirror of `struct flb_filter_plugin` (the host's view; see the plugin's ffi.rs).
#[repr(C)]
pub struct FilterPlugin {
    pub event_type: c_int,
    pub flags: c_int,
    pub name: *const c_char,
    pub description: *const c_char,
    pub config_map: *const c_void,
    pub cb_pre_run: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> c_int>,
    pub cb_init: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> c_int>,
    pub cb_filter: Option<
        unsafe extern "C" fn(
            *const c_void,
            usize,
            *const c_char,
            c_int,
            *mut *mut c_void,
            *mut usize,
            *mut c_void,
            *mut c_void,
            *mut c_void,
            *mut c_void,
        ) -> c_int,
    >,
    pub cb_exit: Option<unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int>,
    pub cb_notification:
        Option<unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> c_int>,
    pub head: [*mut c_void; 2],
}

/// A fake `struct flb_filter_instance`: only what the two host helpers touch.
pub struct Instance {
    props: HashMap<String, CString>,
    context: *mut c_void,
}

/// Fluent Bit's `flb_filter_get_property` (case-insensitive key lookup).
///
/// # Safety
/// `key` is a C string, `ins` an [`Instance`].
#[no_mangle]
pub unsafe extern "C" fn flb_filter_get_property(
    key: *const c_char,
    ins: *mut c_void,
) -> *const c_char {
    let ins = &*(ins as *const Instance);
    let k = CStr::from_ptr(key).to_string_lossy().to_ascii_lowercase();
    ins.props.get(&k).map_or(std::ptr::null(), |v| v.as_ptr())
}

/// Fluent Bit's `flb_filter_set_context`.
///
/// # Safety
/// `ins` is an [`Instance`].
#[no_mangle]
pub unsafe extern "C" fn flb_filter_set_context(ins: *mut c_void, ctx: *mut c_void) {
    (*(ins as *mut Instance)).context = ctx;
}

extern "C" {
    fn dlopen(path: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *const c_char;
    fn free(p: *mut c_void);
}

/// `FLB_FILTER_MODIFIED` / `FLB_FILTER_NOTOUCH`.
pub const MODIFIED: c_int = 1;
/// `FLB_FILTER_NOTOUCH`.
pub const NOTOUCH: c_int = 2;

/// Fluent Bit's side of the native plugin.
pub struct SoHost {
    /// The copied registration struct.
    pub plugin: FilterPlugin,
    instance: Box<Instance>,
}

/// Loads the plugin as `flb_plugin_load` does.
pub fn load_so(path: &Path) -> FilterPlugin {
    let c = CString::new(path.to_str().expect("utf-8 path")).expect("path");
    // SAFETY: dlopen/dlsym with valid C strings; RTLD_LAZY = 1.
    unsafe {
        let h = dlopen(c.as_ptr(), 1);
        assert!(!h.is_null(), "dlopen: {:?}", CStr::from_ptr(dlerror()));
        let s = dlsym(h, c"filter_sigmatag_plugin".as_ptr());
        assert!(!s.is_null(), "registration symbol missing");
        std::ptr::read(s as *const FilterPlugin)
    }
}

impl SoHost {
    /// `cb_init` with these properties; `Err(ret)` when the plugin refused.
    pub fn init(plugin: FilterPlugin, props: &[(&str, &str)]) -> Result<SoHost, c_int> {
        let mut instance = Box::new(Instance {
            props: props
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), CString::new(*v).expect("prop")))
                .collect(),
            context: std::ptr::null_mut(),
        });
        let init = plugin.cb_init.expect("cb_init");
        // SAFETY: the instance lives as long as the host.
        let ret = unsafe {
            init(
                (&mut *instance as *mut Instance).cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if ret != 0 {
            return Err(ret);
        }
        assert!(!instance.context.is_null(), "cb_init must set a context");
        Ok(SoHost { plugin, instance })
    }

    /// `cb_filter` on a chunk: `None` for NOTOUCH, the new chunk for MODIFIED.
    pub fn filter(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        let f = self.plugin.cb_filter.expect("cb_filter");
        let mut out: *mut c_void = std::ptr::null_mut();
        let mut size = 0usize;
        // SAFETY: arguments as Fluent Bit passes them.
        let ret = unsafe {
            f(
                chunk.as_ptr().cast(),
                chunk.len(),
                c"win.test".as_ptr(),
                8,
                &mut out,
                &mut size,
                (&mut *self.instance as *mut Instance).cast(),
                std::ptr::null_mut(),
                self.instance.context,
                std::ptr::null_mut(),
            )
        };
        match ret {
            NOTOUCH => {
                assert!(out.is_null(), "NOTOUCH with a buffer would leak");
                None
            }
            MODIFIED => {
                let v = if out.is_null() {
                    assert_eq!(size, 0);
                    Vec::new()
                } else {
                    // SAFETY: the plugin malloc'd `size` bytes; Fluent Bit frees them.
                    unsafe {
                        let v = std::slice::from_raw_parts(out as *const u8, size).to_vec();
                        free(out);
                        v
                    }
                };
                Some(v)
            }
            other => panic!("cb_filter returned {other}"),
        }
    }
}

impl Drop for SoHost {
    fn drop(&mut self) {
        if let Some(exit) = self.plugin.cb_exit {
            // SAFETY: context from cb_init, called once.
            unsafe { exit(self.instance.context, std::ptr::null_mut()) };
        }
    }
}

/// Builds a v2 event `[[EventTime, {}], body]` from a JSON object, keeping JSON's types
/// (integers as integers, floats as floats).
pub fn event_from_json(v: &serde_json::Value, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x92, 0x92]);
    rmp::encode::write_ext_meta(out, 8, 0).expect("ext");
    out.extend_from_slice(&[0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 5]);
    out.push(0x80);
    value_to_msgpack(v, out);
}

/// A JSON value as msgpack.
pub fn value_to_msgpack(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Null => rmp::encode::write_nil(out).expect("w"),
        Value::Bool(b) => rmp::encode::write_bool(out, *b).expect("w"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                rmp::encode::write_uint(out, u).expect("w");
            } else if let Some(i) = n.as_i64() {
                rmp::encode::write_sint(out, i).expect("w");
            } else {
                rmp::encode::write_f64(out, n.as_f64().unwrap_or(0.0)).expect("w");
            }
        }
        Value::String(s) => rmp::encode::write_str(out, s).expect("w"),
        Value::Array(a) => {
            rmp::encode::write_array_len(out, a.len() as u32).expect("w");
            for x in a {
                value_to_msgpack(x, out);
            }
        }
        Value::Object(m) => {
            rmp::encode::write_map_len(out, m.len() as u32).expect("w");
            for (k, x) in m {
                rmp::encode::write_str(out, k).expect("w");
                value_to_msgpack(x, out);
            }
        }
    }
}
