//! `sigmatag`: tag NDJSON records with the Sigma rules they match, and check rule files.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use sigmatag::{load, read_placeholders, tag_fragments, tag_stream, Loaded, TagStats};
use sigmatag_matcher::Pipeline;
use sigmatag_rule::{LoadOptions, RuleError};

mod serve;

const USAGE: &str = "\
sigmatag: tag records with the Sigma rules they match

USAGE:
    sigmatag tag [--rules PATH]... [--mapping NAME|FILE] [--tag-field NAME]
                 [--placeholders FILE] [--stats] [FILE]
    sigmatag check [--mapping NAME|FILE] [--placeholders FILE] [--json] PATH...
    sigmatag serve [--mode http|tcp|stdout] ... (sigmatag serve --help; docs/vector.md)

tag     reads NDJSON (FILE or stdin), writes NDJSON to stdout, one line out per line in.
        A matching record gets the tag field (default `sigma`) with the matched rules;
        every other line is written byte-identical. Without --rules the embedded default
        rule is used. A summary goes to stderr (--stats adds per-rule match counts).
check   loads rules and reports every rejected rule with file, id, location and reason.
        Exit code 0 when all loaded, 1 otherwise.

--mapping   flat (default), evtx, ecs-windows, or a pipeline YAML file (docs/mappings.md)
";

struct Opts {
    rules: Vec<PathBuf>,
    mapping: Option<String>,
    tag_field: String,
    placeholders: Option<PathBuf>,
    json: bool,
    stats: bool,
    positional: Vec<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        rules: Vec::new(),
        mapping: None,
        tag_field: "sigma".into(),
        placeholders: None,
        json: false,
        stats: false,
        positional: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let mut value = |name: &str| -> Result<String, String> {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--rules" | "-r" => {
                let v = value(a)?;
                o.rules.push(v.into())
            }
            "--mapping" | "-m" => o.mapping = Some(value(a)?),
            "--tag-field" => o.tag_field = value(a)?,
            "--placeholders" => o.placeholders = Some(value(a)?.into()),
            "--json" => o.json = true,
            "--stats" => o.stats = true,
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => o.positional.push(a.into()),
        }
        i += 1;
    }
    Ok(o)
}

fn pipeline(o: &Opts) -> Result<Pipeline, String> {
    match &o.mapping {
        None => Ok(Pipeline::flat()),
        Some(m) => {
            let p = std::path::Path::new(m);
            if p.is_file() {
                let text = std::fs::read_to_string(p).map_err(|e| format!("{m}: {e}"))?;
                Pipeline::from_yaml(&text).map_err(|e| format!("{m}: {e}"))
            } else {
                Pipeline::preset(m)
            }
        }
    }
}

fn load_opts(o: &Opts) -> Result<LoadOptions, String> {
    let mut lo = LoadOptions::default();
    if let Some(p) = &o.placeholders {
        lo.placeholders = read_placeholders(p)?;
    }
    Ok(lo)
}

fn print_error(e: &RuleError) {
    eprintln!("rejected: {e}");
}

fn error_json(e: &RuleError) -> serde_json::Value {
    serde_json::json!({
        "file": e.source, "id": e.rule_id, "title": e.title,
        "line": e.loc.line, "column": e.loc.col, "path": e.path, "reason": e.reason,
    })
}

fn cmd_check(o: &Opts) -> Result<ExitCode, String> {
    if o.positional.is_empty() {
        return Err("check needs at least one PATH".into());
    }
    let loaded = load(&o.positional, pipeline(o)?, &load_opts(o)?).map_err(|e| e.to_string())?;
    if o.json {
        let out = serde_json::json!({
            "files": loaded.files,
            "loaded": loaded.set.len(),
            "rejected": loaded.rejected.iter().map(error_json).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
        );
    } else {
        for e in &loaded.rejected {
            println!("{e}");
        }
        println!(
            "{} files, {} rules loaded, {} rejected",
            loaded.files,
            loaded.set.len(),
            loaded.rejected.len()
        );
    }
    Ok(if loaded.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_tag(o: &Opts) -> Result<ExitCode, String> {
    if o.positional.len() > 1 {
        return Err("tag takes at most one input FILE".into());
    }
    let Loaded { set, rejected, .. } =
        load(&o.rules, pipeline(o)?, &load_opts(o)?).map_err(|e| e.to_string())?;
    for e in &rejected {
        print_error(e);
    }
    let fragments = tag_fragments(&set);
    let field_json = serde_json::to_vec(&o.tag_field).map_err(|e| e.to_string())?;
    let input: Box<dyn Read> = match o.positional.first() {
        Some(p) if p.as_os_str() != "-" => {
            Box::new(std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        _ => Box::new(std::io::stdin().lock()),
    };
    let stdout = std::io::stdout().lock();
    let stats =
        tag_stream(&set, input, stdout, &field_json, &fragments).map_err(|e| e.to_string())?;
    let TagStats {
        records,
        matched,
        unparsable,
        per_rule,
    } = stats;
    eprintln!(
        "sigmatag: {records} records, {matched} matched, {unparsable} unparsable; {} rules loaded, {} rejected",
        set.len(),
        rejected.len()
    );
    if o.stats {
        let mut top: Vec<(u64, usize)> = per_rule
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (*c, i))
            .collect();
        top.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (c, i) in top {
            let info = set.info(i);
            eprintln!("{c:>8}  {}  {}", info.id, info.title);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if cmd == "serve" {
        return ExitCode::from(serve::main(rest));
    }
    let opts = match parse_args(rest) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("sigmatag: {e}");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match cmd {
        "tag" => cmd_tag(&opts),
        "check" => cmd_check(&opts),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(format!("unknown command '{other}'")),
    };
    match result {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sigmatag: {e}");
            ExitCode::from(2)
        }
    }
}
