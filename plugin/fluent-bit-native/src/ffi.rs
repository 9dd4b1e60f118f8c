//! The C side: the registration struct, the callbacks, the host helpers we look up.
//!
//! Host helpers (`flb_filter_get_property`, `flb_filter_set_context`) are found with
//! `dlsym(RTLD_DEFAULT, ..)` at `cb_init`: the `fluent-bit` executable exports its symbols
//! (built with CMake's `ENABLE_EXPORTS`). Looking them up instead of linking them keeps the
//! `.so` loadable anywhere, and a missing helper becomes a clean refusal.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sigmatag_adapter::{describe, Settings};

use crate::{ChunkFilter, ChunkResult, CHECKED_VERSIONS};

/// `FLB_FILTER_MODIFIED`.
pub const FLB_FILTER_MODIFIED: c_int = 1;
/// `FLB_FILTER_NOTOUCH`.
pub const FLB_FILTER_NOTOUCH: c_int = 2;
/// `FLB_FILTER_LOGS` (event_type mask).
pub const FLB_FILTER_LOGS: c_int = 1;

/// `struct mk_list`.
#[repr(C)]
#[derive(Debug)]
pub struct MkList {
    /// prev
    pub prev: *mut MkList,
    /// next
    pub next: *mut MkList,
}

/// `cb_pre_run` / `cb_init` / `cb_notification`: (instance, config, data).
pub type CbInit = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> c_int;
/// `cb_filter`.
pub type CbFilter = unsafe extern "C" fn(
    data: *const c_void,
    bytes: usize,
    tag: *const c_char,
    tag_len: c_int,
    out_buf: *mut *mut c_void,
    out_size: *mut usize,
    f_ins: *mut c_void,
    i_ins: *mut c_void,
    context: *mut c_void,
    config: *mut c_void,
) -> c_int;
/// `cb_exit`: (context, config).
pub type CbExit = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;

/// Mirror of `struct flb_filter_plugin` (include/fluent-bit/flb_filter.h, Fluent Bit
/// 4.0.0-5.1.1).
#[repr(C)]
#[derive(Debug)]
pub struct FlbFilterPlugin {
    /// Event types handled (`FLB_FILTER_LOGS`).
    pub event_type: c_int,
    /// Flags (unused by Fluent Bit).
    pub flags: c_int,
    /// Short name.
    pub name: *const c_char,
    /// Description.
    pub description: *const c_char,
    /// `struct flb_config_map *`: NULL, so Fluent Bit does not validate our properties.
    pub config_map: *const c_void,
    /// cb_pre_run.
    pub cb_pre_run: Option<CbInit>,
    /// cb_init.
    pub cb_init: Option<CbInit>,
    /// cb_filter.
    pub cb_filter: Option<CbFilter>,
    /// cb_exit.
    pub cb_exit: Option<CbExit>,
    /// cb_notification.
    pub cb_notification: Option<CbInit>,
    /// `_head`, filled in by Fluent Bit in its own copy.
    pub head: MkList,
}

// SAFETY: the struct is immutable data (Fluent Bit copies it and links its copy).
unsafe impl Sync for FlbFilterPlugin {}

/// The registration symbol Fluent Bit looks up in `flb-filter_sigmatag.so`.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static filter_sigmatag_plugin: FlbFilterPlugin = FlbFilterPlugin {
    event_type: FLB_FILTER_LOGS,
    flags: 0,
    name: c"sigmatag".as_ptr(),
    description: c"Tag records matching Sigma rules".as_ptr(),
    config_map: std::ptr::null(),
    cb_pre_run: None,
    cb_init: Some(cb_init),
    cb_filter: Some(cb_filter),
    cb_exit: Some(cb_exit),
    cb_notification: None,
    head: MkList {
        prev: std::ptr::null_mut(),
        next: std::ptr::null_mut(),
    },
};

#[link(name = "dl")]
extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}
extern "C" {
    fn malloc(size: usize) -> *mut c_void;
}

type GetProperty = unsafe extern "C" fn(*const c_char, *mut c_void) -> *const c_char;
type SetContext = unsafe extern "C" fn(*mut c_void, *mut c_void);

fn host_symbol(name: &CStr) -> *mut c_void {
    // SAFETY: RTLD_DEFAULT is the null handle on glibc; name is NUL-terminated.
    unsafe { dlsym(std::ptr::null_mut(), name.as_ptr()) }
}

/// The per-instance context handed back to `cb_filter`.
pub struct Context {
    filter: Mutex<ChunkFilter>,
}

/// The version of the running Fluent Bit: `$SIGMATAG_FLB_VERSION` if set (for embedders
/// and tests), else the output of `/proc/self/exe --version` ("Fluent Bit v5.1.1").
pub fn host_version() -> Result<String, String> {
    if let Ok(v) = std::env::var("SIGMATAG_FLB_VERSION") {
        return Ok(v.trim().trim_start_matches('v').to_string());
    }
    let out = run_with_timeout(
        Path::new("/proc/self/exe"),
        std::time::Duration::from_secs(10),
    )?;
    parse_version_banner(&out)
        .ok_or_else(|| "cannot tell the Fluent Bit version from `fluent-bit --version`".to_string())
}

/// Finds `Fluent Bit vX.Y.Z` in a banner.
pub fn parse_version_banner(text: &str) -> Option<String> {
    let i = text.find("Fluent Bit v")? + "Fluent Bit v".len();
    let v: String = text[i..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

fn run_with_timeout(exe: &Path, limit: std::time::Duration) -> Result<String, String> {
    use std::io::Read;
    let mut child = std::process::Command::new(exe)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {} --version: {e}", exe.display()))?;
    let t0 = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if t0.elapsed() < limit => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} --version did not finish", exe.display()));
            }
        }
    }
    let mut s = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut s);
    }
    Ok(s)
}

/// Settings from the instance's properties: `config` (a sigmatag.yml), then `rules`
/// (comma-separated), `mapping`, `tag_field`, `drop_unmatched`, `placeholders`.
fn settings(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
    let cwd = PathBuf::from(".");
    let mut s = match get("config") {
        Some(f) => {
            let path = PathBuf::from(&f);
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{f}: {e}"))?;
            let dir = path.parent().map(Path::to_path_buf).unwrap_or(cwd.clone());
            let mut s =
                sigmatag_adapter::parse_config(&text, &dir).map_err(|e| format!("{f}: {e}"))?;
            s.not_rules.push(path);
            s
        }
        None => Settings::with_rules(Vec::new()),
    };
    for key in [
        "rules",
        "mapping",
        "tag_field",
        "drop_unmatched",
        "placeholders",
    ] {
        if let Some(v) = get(key) {
            let vals: Vec<&str> = if key == "rules" {
                v.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .collect()
            } else {
                vec![v.trim()]
            };
            s.set(key, &vals, &cwd)?;
        }
    }
    if s.rules.is_empty() {
        return Err("no rules: set the `rules` property (a file or directory) or `config`".into());
    }
    Ok(s)
}

/// Everything `cb_init` does, without the C types: version check, settings, rules.
pub fn init_filter(get: &dyn Fn(&str) -> Option<String>) -> Result<ChunkFilter, String> {
    let v = host_version()?;
    if !CHECKED_VERSIONS.contains(&v.as_str()) {
        return Err(format!(
            "Fluent Bit {v} is not a version this plugin was checked against ({}..{}); refusing to run. Use the filter_wasm module, or set SIGMATAG_FLB_VERSION at your own risk",
            CHECKED_VERSIONS[0],
            CHECKED_VERSIONS[CHECKED_VERSIONS.len() - 1]
        ));
    }
    let s = settings(get)?;
    let r = sigmatag_adapter::load(s)?;
    for e in r.rejected.iter().take(50) {
        eprintln!("[filter:sigmatag] rejected {}", describe(e));
    }
    eprintln!(
        "[filter:sigmatag] Fluent Bit {v}: {} rules loaded from {} files, {} rejected; tag field '{}'",
        r.engine.set.len(),
        r.files,
        r.rejected.len(),
        r.engine.settings.tag_field
    );
    ChunkFilter::new(r.engine)
}

unsafe extern "C" fn cb_init(ins: *mut c_void, _config: *mut c_void, _data: *mut c_void) -> c_int {
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        let get_ptr = host_symbol(c"flb_filter_get_property");
        let set_ptr = host_symbol(c"flb_filter_set_context");
        if get_ptr.is_null() || set_ptr.is_null() {
            return Err("the host exports no flb_filter_get_property/flb_filter_set_context: not a Fluent Bit executable".into());
        }
        // SAFETY: the symbols have these C signatures in every checked version.
        let get_prop: GetProperty =
            unsafe { std::mem::transmute::<*mut c_void, GetProperty>(get_ptr) };
        let set_ctx: SetContext =
            unsafe { std::mem::transmute::<*mut c_void, SetContext>(set_ptr) };
        let get = |key: &str| -> Option<String> {
            let k = std::ffi::CString::new(key).ok()?;
            // SAFETY: `ins` is the instance Fluent Bit passed; the key is NUL-terminated.
            let v = unsafe { get_prop(k.as_ptr(), ins) };
            if v.is_null() {
                None
            } else {
                // SAFETY: Fluent Bit returns a NUL-terminated property value.
                Some(unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned())
            }
        };
        let filter = init_filter(&get)?;
        let ctx = Box::new(Context {
            filter: Mutex::new(filter),
        });
        // SAFETY: hands Fluent Bit our context pointer; it gives it back to cb_filter/cb_exit.
        unsafe { set_ctx(ins, Box::into_raw(ctx).cast()) };
        Ok(())
    }));
    match r {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("[filter:sigmatag] {e}");
            -1
        }
        Err(_) => {
            eprintln!("[filter:sigmatag] internal error during init");
            -1
        }
    }
}

/// The filter callback.
///
/// # Safety
/// Called by Fluent Bit with a chunk of `bytes` bytes and the context set in `cb_init`.
pub unsafe extern "C" fn cb_filter(
    data: *const c_void,
    bytes: usize,
    _tag: *const c_char,
    _tag_len: c_int,
    out_buf: *mut *mut c_void,
    out_size: *mut usize,
    _f_ins: *mut c_void,
    _i_ins: *mut c_void,
    context: *mut c_void,
    _config: *mut c_void,
) -> c_int {
    if data.is_null() || context.is_null() || out_buf.is_null() || out_size.is_null() {
        return FLB_FILTER_NOTOUCH;
    }
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: context is the Box<Context> leaked in cb_init, alive until cb_exit.
        let ctx = unsafe { &*(context as *const Context) };
        // SAFETY: Fluent Bit passes `bytes` readable bytes.
        let chunk = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), bytes) };
        let mut f = match ctx.filter.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match f.filter(chunk) {
            ChunkResult::Untouched => FLB_FILTER_NOTOUCH,
            ChunkResult::Modified(v) => {
                // Fluent Bit frees the buffer with free(): it must come from malloc.
                // SAFETY: plain allocation; size at least 1.
                let p = unsafe { malloc(v.len().max(1)) };
                if p.is_null() {
                    f.reporter.report(
                        sigmatag_adapter::ErrorKind::Internal,
                        &"out of memory for a tagged chunk; passed through unchanged",
                    );
                    return FLB_FILTER_NOTOUCH;
                }
                // SAFETY: p has room for v.len() bytes; out pointers checked non-null.
                unsafe {
                    std::ptr::copy_nonoverlapping(v.as_ptr(), p.cast::<u8>(), v.len());
                    *out_buf = p;
                    *out_size = v.len();
                }
                FLB_FILTER_MODIFIED
            }
        }
    }));
    r.unwrap_or(FLB_FILTER_NOTOUCH)
}

unsafe extern "C" fn cb_exit(context: *mut c_void, _config: *mut c_void) -> c_int {
    if !context.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the pointer leaked in cb_init; Fluent Bit calls cb_exit once.
            drop(unsafe { Box::from_raw(context as *mut Context) });
        }));
    }
    0
}
