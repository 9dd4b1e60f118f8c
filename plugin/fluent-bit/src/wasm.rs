//! The wasm32 exports: `_initialize`, `sigmatag_filter`. (`malloc`/`free` are the C
//! library's, exported by link arguments in build.rs.)

use std::cell::RefCell;
use std::path::PathBuf;

use sigmatag_adapter::{describe, ErrorKind, Reporter, Settings};

use crate::{JsonFilter, Verdict};

enum State {
    Ready(Box<JsonFilter>),
    /// Loading failed: every record passes through unchanged.
    Failed(Reporter),
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Most rejected rules listed individually on stderr at start.
const MAX_LISTED: usize = 50;

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn fd_prestat_get(fd: u32, buf: *mut u8) -> i32;
    fn fd_prestat_dir_name(fd: u32, path: *mut u8, len: u32) -> i32;
}

/// The pre-opened directories (filter_wasm's `Accessible_Paths`), in fd order.
fn preopened_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // fds 0-2 are stdio; pre-opens follow until the first fd that is not one.
    for fd in 3u32..1024 {
        // struct prestat { u8 tag; u32 pr_name_len } (tag 0 = directory), 8 bytes.
        let mut buf = [0u8; 8];
        // SAFETY: buf is 8 writable bytes, the size of a WASI prestat.
        if unsafe { fd_prestat_get(fd, buf.as_mut_ptr()) } != 0 {
            break;
        }
        if buf[0] != 0 {
            continue;
        }
        let len = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let mut name = vec![0u8; len as usize];
        // SAFETY: name has exactly `len` writable bytes.
        if unsafe { fd_prestat_dir_name(fd, name.as_mut_ptr(), len) } != 0 {
            continue;
        }
        while name.last() == Some(&0) {
            name.pop();
        }
        if let Ok(s) = String::from_utf8(name) {
            dirs.push(PathBuf::from(s));
        }
    }
    dirs
}

fn load() -> State {
    let mut dirs = preopened_dirs();
    // filter_wasm pre-opens "." (Fluent Bit's working directory) when Accessible_Paths is
    // not set: never search that for rules unless it holds a sigmatag.yml.
    dirs.retain(|d| d.as_os_str() != "." || d.join(sigmatag_adapter::CONFIG_FILE).is_file());
    let settings = if dirs.is_empty() {
        eprintln!(
            "sigmatag: no rules directory is pre-opened (set Accessible_Paths): using the embedded default rule"
        );
        None
    } else {
        match sigmatag_adapter::settings_for_dirs(&dirs) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("sigmatag: {e}; every record passes through unchanged");
                return State::Failed(Reporter::default());
            }
        }
    };
    let report = match settings {
        Some(s) => sigmatag_adapter::load(s),
        None => embedded(),
    };
    match report {
        Ok(r) => {
            for e in r.rejected.iter().take(MAX_LISTED) {
                eprintln!("sigmatag: rejected {}", describe(e));
            }
            if r.rejected.len() > MAX_LISTED {
                eprintln!(
                    "sigmatag: ... and {} more rejected",
                    r.rejected.len() - MAX_LISTED
                );
            }
            eprintln!(
                "sigmatag: {} rules loaded from {} files, {} rejected; tag field '{}'{}",
                r.engine.set.len(),
                r.files,
                r.rejected.len(),
                r.engine.settings.tag_field,
                if r.engine.settings.drop_unmatched {
                    ", unmatched records dropped"
                } else {
                    ""
                }
            );
            State::Ready(Box::new(JsonFilter::new(r.engine)))
        }
        Err(e) => {
            eprintln!("sigmatag: cannot load rules: {e}; every record passes through unchanged");
            State::Failed(Reporter::default())
        }
    }
}

fn embedded() -> Result<sigmatag_adapter::LoadReport, String> {
    let (rules, rejected) = sigmatag::parse_texts(
        [(
            sigmatag::DEFAULT_RULE_SOURCE.to_string(),
            std::borrow::Cow::Borrowed(sigmatag::DEFAULT_RULE),
        )],
        &Default::default(),
    );
    let (set, _) = sigmatag_matcher::RuleSet::compile(&rules, sigmatag_matcher::Pipeline::flat());
    Ok(sigmatag_adapter::LoadReport {
        engine: sigmatag_adapter::Engine::new(set, Settings::with_rules(vec![])),
        files: 1,
        rejected,
    })
}

fn ensure_loaded(state: &mut Option<State>) -> &mut State {
    state.get_or_insert_with(load)
}

/// Reactor initialisation: WAMR runs it once after instantiating the module.
#[no_mangle]
pub extern "C" fn _initialize() {
    extern "C" {
        // The linker-made constructor runner (static initialisers of the C library).
        fn __wasm_call_ctors();
    }
    // SAFETY: called once, before anything else runs in the module, as a reactor's
    // `_initialize` must.
    unsafe { __wasm_call_ctors() };
    STATE.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            ensure_loaded(&mut s);
        }
    });
}

static EMPTY: [u8; 1] = [0];

/// The filter function (`Function_Name sigmatag_filter`): returns the record pointer
/// (unchanged), a pointer to the tagged record, or `""` (drop).
///
/// # Safety
/// `record` must point to `record_len` readable bytes followed by a NUL, as the host
/// guarantees; a null `record` is handled.
#[no_mangle]
pub unsafe extern "C" fn sigmatag_filter(
    _tag: *const u8,
    _tag_len: u32,
    _time_sec: u32,
    _time_nsec: u32,
    record: *const u8,
    record_len: u32,
) -> *const u8 {
    STATE.with(|cell| {
        let Ok(mut guard) = cell.try_borrow_mut() else {
            // Re-entered (cannot happen with one host thread): keep the record.
            return if record.is_null() {
                EMPTY.as_ptr()
            } else {
                record
            };
        };
        let state = ensure_loaded(&mut guard);
        if record.is_null() {
            let r = match state {
                State::Ready(f) => &mut f.reporter,
                State::Failed(r) => r,
            };
            r.report(
                ErrorKind::NullRecord,
                &"the host passed no record (its copy into module memory failed); it is lost",
            );
            return EMPTY.as_ptr();
        }
        match state {
            State::Failed(r) => {
                r.report(
                    ErrorKind::NotLoaded,
                    &"rules are not loaded; records pass through",
                );
                record
            }
            State::Ready(f) => {
                // SAFETY: the host copied record_len bytes (plus a NUL) to `record`.
                let bytes = unsafe { std::slice::from_raw_parts(record, record_len as usize) };
                match f.filter(bytes) {
                    Verdict::Keep => record,
                    Verdict::Drop => EMPTY.as_ptr(),
                    Verdict::Tagged => f.output().as_ptr(),
                }
            }
        }
    })
}
