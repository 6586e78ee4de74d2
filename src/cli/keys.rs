//! `updatekeys`, `rotate --all` and `access`: the master keys of many files at once.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use super::{command_error, say, warn, Env};
use coffer::config::{Config, CreationRule};
use coffer::format::json::json_string;
use coffer::git::workspace::{self, Found, Selection};
use coffer::keys::Recipients;
use coffer::rekey::{self, KeyChange, Rotation};
use coffer::sops::OpenOptions;
use coffer::{sops, Error, Result};

#[derive(Args, Debug)]
pub struct UpdatekeysArgs {
    /// Encrypted files, directories (recursive) and globs
    #[arg(required_unless_present = "all")]
    pub paths: Vec<PathBuf>,
    /// Every encrypted file of the git repository (tracked, or untracked and not ignored)
    #[arg(long, conflicts_with = "paths")]
    pub all: bool,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without asking
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Keep the data key of files that lose a key (the removed key may still open them)
    #[arg(long)]
    pub no_rotate: bool,
}

#[derive(Args, Debug)]
pub struct AccessArgs {
    /// Encrypted files, directories (recursive) and globs (default: the whole repository)
    pub paths: Vec<PathBuf>,
    /// Only the files this person opens: a name from the rules file, an age recipient (or a unique start of one), a KMS key ARN or a PGP fingerprint
    #[arg(long, value_name = "NAME|KEY")]
    pub who: Option<String>,
    /// JSON for scripts
    #[arg(long)]
    pub json: bool,
}

fn selection(all: bool, paths: &[PathBuf]) -> Selection<'_> {
    if all || paths.is_empty() {
        Selection::All
    } else {
        Selection::Paths(paths)
    }
}

/// The files to look at; a file named on the command line that is not encrypted is an
/// error (a directory or a glob just has fewer files).
pub(super) fn found(all: bool, paths: &[PathBuf]) -> Result<Vec<Found>> {
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    // A path that names nothing is a mistake, not an empty selection (globs may match none).
    for p in paths {
        let glob = p.to_string_lossy().contains(['*', '?', '[']);
        if let (Err(e), false) = (std::fs::symlink_metadata(p), glob) {
            return Err(Error::io(p, e));
        }
    }
    let found = workspace::encrypted_files(&cwd, selection(all, paths))?;
    for p in paths {
        if p.is_file() {
            let abs = std::fs::canonicalize(p).map_err(|e| Error::io(p, e))?;
            let known = found
                .iter()
                .any(|f| std::fs::canonicalize(&f.path).is_ok_and(|c| c == abs));
            if !known && coffer::git::worktree::is_covered(p) {
                return Err(Error::Refused(format!(
                    "{}: the coffer filter covers it and git stores no encrypted version of it yet; `git add` it first",
                    p.display()
                )));
            }
            if !known {
                return Err(Error::NotEncrypted {
                    file: p.display().to_string(),
                });
            }
        }
    }
    Ok(found)
}

/// Creation rules, each config file read once.
pub(super) struct Rules<'a> {
    pub(super) explicit: Option<&'a Path>,
    pub(super) loaded: HashMap<PathBuf, Config>,
}

impl Rules<'_> {
    fn for_file(&mut self, path: &Path) -> Result<Option<CreationRule>> {
        let file = match self.explicit {
            Some(p) => Some(p.to_path_buf()),
            None => path.parent().and_then(coffer::config::find),
        };
        let Some(file) = file else { return Ok(None) };
        if !self.loaded.contains_key(&file) {
            let config = Config::load(&file)?;
            self.loaded.insert(file.clone(), config);
        }
        let rule = self.loaded[&file].rule_for(path).cloned();
        match rule {
            Some(CreationRule {
                unsupported: Some(why),
                ..
            }) => Err(Error::Config {
                file: file.display().to_string(),
                message: why,
            }),
            rule => Ok(rule),
        }
    }

    /// Names people gave keys in the config files read so far (`age1… # alice`), and in
    /// their committed versions, so a key just removed from the rules is still named.
    pub(super) fn names(&self) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for file in self.loaded.keys() {
            if let Some(text) = workspace::committed_text(file) {
                out.extend(coffer::config::key_names(&text));
            }
            if let Ok(text) = std::fs::read_to_string(file) {
                out.extend(coffer::config::key_names(&text));
            }
        }
        out
    }
}

/// One file's part of a plan.
pub(super) struct Planned {
    pub(super) found: Found,
    /// What it should be wrapped for.
    wanted: Recipients,
    pub(super) change: KeyChange,
    /// The rule's settings the file differs in (what is encrypted), and the rule.
    settings: Vec<&'static str>,
    rule: Option<CreationRule>,
}

/// A plan over many files: what changes, what is in step, what is left alone and why.
pub(super) struct Plan {
    pub(super) changes: Vec<Planned>,
    unchanged: usize,
    /// Files no creation rule matches, by working-tree path.
    ruleless: Vec<PathBuf>,
    /// Skipped files that would have lost a key: the revocation is not complete.
    held_back: usize,
    /// Files with master keys coffer does not speak (GCP KMS, Azure Key Vault, Vault, HuaweiCloud KMS), left as they are.
    foreign: usize,
    skipped: Vec<(String, String)>,
}

pub(super) fn plan(
    found: Vec<Found>,
    rotation: Rotation,
    rules: &mut Rules<'_>,
    keep_keys: bool,
) -> Result<Plan> {
    let mut plan = Plan {
        changes: Vec::new(),
        unchanged: 0,
        ruleless: Vec::new(),
        held_back: 0,
        foreign: 0,
        skipped: Vec::new(),
    };
    for f in found {
        // Every file found is planned, skipped with a reason, or failed: none is left out.
        let meta = match sops::read_metadata(&f.name, f.format, f.bytes.clone()) {
            Ok((_, meta, _)) => meta,
            Err(e) => {
                plan.skipped
                    .push((f.name, format!("its metadata does not read ({e})")));
                continue;
            }
        };
        let current = Recipients::of(&meta);
        let mut rule = None;
        let wanted = if keep_keys {
            // An entry that names no recipient cannot be wrapped for again.
            let mut kept = current.clone();
            kept.age.retain(|r| !r.is_empty());
            for g in &mut kept.groups {
                g.age.retain(|r| !r.is_empty());
            }
            kept
        } else {
            match rules.for_file(&f.path)? {
                Some(r) => {
                    let wanted = r.recipients()?;
                    rule = Some(r);
                    wanted
                }
                None => {
                    plan.ruleless.push(f.path.clone());
                    plan.skipped
                        .push((f.name, "no creation rule matches it".into()));
                    continue;
                }
            }
        };
        if wanted.is_empty() {
            let why = if keep_keys {
                "none of its keys can be wrapped for anew (its entries name no recipient)"
            } else {
                "its creation rule names no keys"
            };
            plan.skipped.push((f.name, why.into()));
            continue;
        }
        let mut change = rekey::change(&current, &wanted, rotation);
        // A recipient named twice: the second entry may be someone else's, relabelled.
        for twice in coffer::metadata::duplicate_entries(&meta) {
            change.removed.push(format!("a second entry named {twice}"));
            change.rotate = rotation != Rotation::Never;
        }
        if change.rotate {
            // A new data key cannot be wrapped for keys coffer does not speak.
            for (kind, _) in &meta.foreign_keys {
                change.removed.push(format!(
                    "{kind} keys (coffer cannot wrap a new data key for them)"
                ));
            }
        }
        if !change.rotate && !meta.foreign_keys.is_empty() {
            plan.foreign += 1;
        }
        // What the rule says to encrypt counts as much as whom for.
        let settings = match &rule {
            Some(r) => rekey::drift(&meta, r)?.settings,
            None => Vec::new(),
        };
        if change.is_empty() && settings.is_empty() {
            plan.unchanged += 1;
        } else if f.unstaged {
            // A key removed or a rotation asked for is not done until this file is.
            if !change.removed.is_empty() || change.rotate {
                plan.held_back += 1;
            }
            plan.skipped.push((
                f.name,
                "its working copy has unstaged changes; commit or stash them, then run this again"
                    .into(),
            ));
        } else {
            plan.changes.push(Planned {
                found: f,
                wanted,
                change,
                settings,
                rule,
            });
        }
    }
    Ok(plan)
}

pub(super) fn print_plan(plan: &Plan, names: &HashMap<String, String>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let io = |e| Error::io("<stdout>", e);
    let shown = |k: &String| match names.get(k.strip_prefix("kms:").unwrap_or(k)) {
        Some(n) => format!("{k} ({n})"),
        None => k.clone(),
    };
    let line = |out: &mut std::io::StdoutLock, s: &str| {
        writeln!(out, "{}", command_error::one_line(s)).map_err(io)
    };
    for p in &plan.changes {
        let staged = if p.found.covered {
            " (covered by the git filter: staged)"
        } else {
            ""
        };
        line(&mut out, &format!("{}{staged}", p.found.name))?;
        for k in &p.change.added {
            line(&mut out, &format!("  + {}", shown(k)))?;
        }
        for k in &p.change.removed {
            line(&mut out, &format!("  - {}", shown(k)))?;
        }
        for setting in &p.settings {
            line(
                &mut out,
                &format!("  ~ {setting} (as the creation rule says)"),
            )?;
        }
        if p.change.rotate {
            line(
                &mut out,
                if p.change.removed.is_empty() {
                    "  (data key rotated)"
                } else {
                    "  (data key rotated: a key was removed)"
                },
            )?;
        }
    }
    for (name, why) in &plan.skipped {
        line(&mut out, &format!("skipped {name}: {why}"))?;
    }
    let rotated = plan.changes.iter().filter(|p| p.change.rotate).count();
    line(
        &mut out,
        &format!(
            "Plan: {} file(s) to change ({rotated} with a new data key), {} unchanged, {} skipped.",
            plan.changes.len(),
            plan.unchanged,
            plan.skipped.len()
        ),
    )
}

/// Ask once for the whole plan on a terminal; without one, `-y` is needed.
pub(super) fn confirm(what: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::Usage(format!(
            "{what} changes files: confirm with -y (there is no terminal to ask on), or see the plan with --dry-run"
        )));
    }
    eprint!("Apply this plan? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::io("<stdin>", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Re-key every planned file, spread over the cores. Files outside the filter are written
/// in place; covered files are staged. A failure is reported and the rest go on.
fn apply(plan: Plan, env: &Env) -> Result<()> {
    let keyring = env.keyring()?;
    let total = plan.changes.len();
    let bar =
        Some(indicatif::ProgressBar::new(total as u64)).filter(|bar| total > 5 && !bar.is_hidden());
    let plan_paths: HashMap<String, PathBuf> = plan
        .changes
        .iter()
        .map(|p| (p.found.name.clone(), p.found.path.clone()))
        .collect();
    let jobs = std::sync::Mutex::new(plan.changes.into_iter());
    let results = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(total.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let Some(p) = jobs.lock().expect("job lock").next() else {
                    return;
                };
                let result = rekey_one(&p, &keyring, env);
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                results.lock().expect("result lock").push((p, result));
            });
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut results = results.into_inner().expect("result lock");
    results.sort_by(|a, b| a.0.found.name.cmp(&b.0.found.name));
    let mut staged = Vec::new();
    let mut failed = Vec::new();
    let mut done = Vec::new();
    for (p, result) in results {
        match result {
            Ok(Some(bytes)) => staged.push(workspace::Staged {
                name: p.found.name.clone(),
                was: p
                    .found
                    .staged_id
                    .expect("a covered file was read from the index"),
                bytes,
            }),
            Ok(None) => {}
            Err(e) => {
                failed.push((p.found.name.clone(), e));
                continue;
            }
        }
        done.push((p.found.name.clone(), p.change.rotate));
    }
    let not_staged = match staged.first() {
        None => Vec::new(),
        Some(first) => {
            let at = plan_paths.get(&first.name).cloned().unwrap_or_default();
            match workspace::stage(&at, &staged) {
                Ok(left) => left,
                Err(e) => staged
                    .iter()
                    .map(|s| (s.name.clone(), e.to_string()))
                    .collect(),
            }
        }
    };
    done.retain(|(name, _)| !not_staged.iter().any(|(n, _)| n == name));
    let staged_count = staged.len() - not_staged.len();
    failed.extend(not_staged);
    let rotated = done.iter().filter(|(_, r)| *r).count();
    say(&format!(
        "{} file(s) re-wrapped, {rotated} with a new data key, {staged_count} staged",
        done.len() - rotated
    ));
    if failed.is_empty() {
        return Ok(());
    }
    for (name, why) in &failed {
        // Library errors mostly name the file already.
        let line = if why.starts_with(name.as_str()) {
            why.clone()
        } else {
            format!("{name}: {why}")
        };
        eprintln!("not updated: {}", command_error::one_line(&line));
    }
    Err(Error::PartlyApplied {
        failed: failed.len(),
        total,
    })
}

/// One file re-keyed: written in place, or, for a covered file, the blob to stage.
fn rekey_one(
    p: &Planned,
    keyring: &coffer::keys::Keyring,
    env: &Env,
) -> std::result::Result<Option<Vec<u8>>, String> {
    let f = &p.found;
    let mut opened = sops::open(
        &f.name,
        f.format,
        f.bytes.clone(),
        keyring,
        OpenOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    opened.rewrite_future = env.force;
    let sealed = match &p.rule {
        // Values the rule encrypts otherwise: every value is encrypted anew.
        Some(rule) if !p.settings.is_empty() => {
            let drift = rekey::Drift {
                keys: p.change.clone(),
                settings: p.settings.clone(),
            };
            let plaintext = opened
                .render()
                .and_then(|p| sops::parse(&f.name, f.format, p.bytes))
                .map_err(|e| e.to_string())?;
            rekey::to_rule(&opened.keyed(), rule, &drift, env.wrappers())
                .and_then(|keyed| keyed.encrypt(&plaintext))
        }
        _ => rekey::rekey(&opened, &p.wanted, p.change.rotate, env.wrappers()),
    }
    .map_err(|e| e.to_string())?;
    let bytes = env.accept(sealed).map_err(|e| e.to_string())?;
    if f.covered {
        return Ok(Some(bytes.to_vec()));
    }
    // Held to the rename: an edit since the plan was read (or while it waited for an
    // answer, or one landing now) is kept, and this file reported, not overwritten.
    let mut held = env.hold(&f.path).map_err(|e| e.to_string())?;
    if *held.read().map_err(|e| e.to_string())? != *f.bytes {
        return Err("changed since the plan was made; run it again".into());
    }
    held.write(&bytes).map_err(|e| e.to_string())?;
    Ok(None)
}

pub fn updatekeys(args: UpdatekeysArgs, config: Option<&Path>, env: &Env) -> Result<()> {
    let rotation = if args.no_rotate {
        Rotation::Never
    } else {
        Rotation::OnRemoval
    };
    let mut rules = Rules {
        explicit: config,
        loaded: HashMap::new(),
    };
    let plan = plan(found(args.all, &args.paths)?, rotation, &mut rules, false)?;
    print_plan(&plan, &rules.names())?;
    // A file named on the command line is meant: no rule for it is an error, as in sops.
    for p in args.paths.iter().filter(|p| p.is_file()) {
        let abs = std::fs::canonicalize(p).map_err(|e| Error::io(p, e))?;
        if plan
            .ruleless
            .iter()
            .any(|r| std::fs::canonicalize(r).is_ok_and(|c| c == abs))
        {
            return Err(Error::Config {
                file: p.display().to_string(),
                message: "no creation rule matches this file".into(),
            });
        }
    }
    finish(
        plan,
        args.dry_run,
        args.yes,
        "updatekeys",
        env,
        args.no_rotate,
    )
}

/// `rotate --all` or over paths: a new data key for every file, keys as they are.
pub fn rotate_many(
    all: bool,
    paths: &[PathBuf],
    dry_run: bool,
    yes: bool,
    env: &Env,
) -> Result<()> {
    let mut rules = Rules {
        explicit: None,
        loaded: HashMap::new(),
    };
    let plan = plan(found(all, paths)?, Rotation::Always, &mut rules, true)?;
    print_plan(&plan, &HashMap::new())?;
    finish(plan, dry_run, yes, "rotate", env, false)
}

/// Apply the plan once it is confirmed; files held back from a key removal make the
/// command fail, since the revocation is not complete until they are done.
pub(super) fn finish(
    plan: Plan,
    dry_run: bool,
    yes: bool,
    what: &str,
    env: &Env,
    no_rotate: bool,
) -> Result<()> {
    if plan.foreign > 0 {
        warn(&format!(
            "{} file(s) also have GCP KMS, Azure Key Vault, Vault or HuaweiCloud KMS master keys that coffer neither compares with the rules nor removes (rotating drops them)",
            plan.foreign
        ));
    }
    let held_back = plan.held_back;
    let total = plan.changes.len() + held_back;
    let incomplete = || -> Result<()> {
        match held_back {
            0 => Ok(()),
            n => Err(Error::PartlyApplied { failed: n, total }),
        }
    };
    if dry_run || plan.changes.is_empty() {
        return if dry_run { Ok(()) } else { incomplete() };
    }
    if !yes && !confirm(what)? {
        say("nothing changed");
        return Ok(());
    }
    let kept = plan
        .changes
        .iter()
        .filter(|p| no_rotate && !p.change.removed.is_empty())
        .count();
    if kept > 0 {
        warn(&format!(
            "{kept} file(s) keep their data key (--no-rotate): a removed key may still open them, and their older copies"
        ));
    }
    match apply(plan, env) {
        Err(Error::PartlyApplied { failed, .. }) => Err(Error::PartlyApplied {
            failed: failed + held_back,
            total,
        }),
        Err(e) => Err(e),
        Ok(()) => incomplete(),
    }
}

/// Whether a file's key label is `who` (a recipient, `pgp:FP` or its fingerprint, a KMS
/// key ARN, used through a role or not).
fn is_key(label: &str, who: &str) -> bool {
    let l = rekey::key_of_label(label);
    let who_arn = who.strip_prefix("kms:").unwrap_or(who);
    let arn = l
        .strip_prefix("kms:")
        .map(|k| k.split('+').next().unwrap_or(k));
    l == who || l.strip_prefix("pgp:") == Some(who) || arn == Some(who_arn)
}

/// The key `--who` means: a key as written, a name the rules give a key, or the one key
/// that starts so. Anything else is a mistake, not an empty answer.
fn resolve_who(who: &str, labels: &[&String], names: &HashMap<String, String>) -> Result<String> {
    if labels.iter().any(|l| is_key(l, who)) || names.contains_key(who) {
        return Ok(who.to_string());
    }
    let named: Vec<&String> = names
        .iter()
        .filter(|(_, n)| *n == who)
        .map(|(k, _)| k)
        .collect();
    if let [key] = named.as_slice() {
        return Ok((*key).clone());
    }
    let mut keys: Vec<String> = labels
        .iter()
        .map(|l| rekey::key_of_label(l).to_string())
        .chain(names.keys().cloned())
        .filter(|k| who.len() >= 8 && k.starts_with(who))
        .collect();
    keys.sort();
    keys.dedup();
    match keys.as_slice() {
        [key] => Ok(key.clone()),
        [] => Err(Error::Usage(format!(
            "--who {who}: no key of these files or name in the rules file is {who}"
        ))),
        _ => Err(Error::Usage(format!(
            "--who {who}: {} keys start so; give more of it",
            keys.len()
        ))),
    }
}

pub fn access(args: AccessArgs, config: Option<&Path>) -> Result<()> {
    let mut rules = Rules {
        explicit: config,
        loaded: HashMap::new(),
    };
    let mut rows = Vec::new();
    for f in found(false, &args.paths)? {
        let (_, meta, _) = sops::read_metadata(&f.name, f.format, f.bytes.clone())?;
        let keys = Recipients::of(&meta);
        let labels = rekey::labels(&keys);
        let rule = match rules.for_file(&f.path)? {
            Some(r) => {
                let mut c = rekey::change(&keys, &r.recipients()?, Rotation::Never);
                c.removed.extend(
                    coffer::metadata::duplicate_entries(&meta)
                        .into_iter()
                        .map(|k| format!("a second entry named {k}")),
                );
                Some(c)
            }
            None => None,
        };
        rows.push((f.name, labels, rule));
    }
    let mut names = rules.names();
    if let Some(who) = &args.who {
        // Names from the rules file nearest here too, when no file was governed by it.
        let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
        let near = config
            .map(Path::to_path_buf)
            .or_else(|| coffer::config::find(&cwd));
        if let Some(text) = near.and_then(|p| std::fs::read_to_string(p).ok()) {
            names.extend(coffer::config::key_names(&text));
        }
        let all: Vec<&String> = rows.iter().flat_map(|(_, l, _)| l).collect();
        let who = resolve_who(who.trim(), &all, &names)?;
        rows.retain(|(_, labels, _)| labels.iter().any(|l| is_key(l, &who)));
    }
    let name_of = |k: &str| {
        let k = rekey::key_of_label(k);
        names.get(k.strip_prefix("kms:").unwrap_or(k)).cloned()
    };
    let mut out = String::new();
    if args.json {
        out.push('[');
        for (i, (file, labels, rule)) in rows.iter().enumerate() {
            out.push_str(if i == 0 { "\n  " } else { ",\n  " });
            let keys: Vec<String> = labels
                .iter()
                .map(|k| match name_of(k) {
                    Some(n) => format!(
                        "{{\"key\": {}, \"name\": {}}}",
                        json_string(k),
                        json_string(&n)
                    ),
                    None => format!("{{\"key\": {}}}", json_string(k)),
                })
                .collect();
            let list = |v: &[String]| {
                v.iter()
                    .map(|s| json_string(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let rule = match rule {
                None => "null".to_string(),
                Some(c) => format!(
                    "{{\"add\": [{}], \"remove\": [{}]}}",
                    list(&c.added),
                    list(&c.removed)
                ),
            };
            out.push_str(&format!(
                "{{\"file\": {}, \"keys\": [{}], \"rule\": {rule}}}",
                json_string(file),
                keys.join(", ")
            ));
        }
        out.push_str(if rows.is_empty() { "]\n" } else { "\n]\n" });
    } else if args.who.is_some() {
        for (file, _, _) in &rows {
            out.push_str(&command_error::one_line(file));
            out.push('\n');
        }
    } else {
        for (file, labels, rule) in &rows {
            out.push_str(&command_error::one_line(file));
            out.push('\n');
            for k in labels {
                let line = match name_of(k) {
                    Some(n) => format!("  {k} ({n})"),
                    None => format!("  {k}"),
                };
                out.push_str(&command_error::one_line(&line));
                out.push('\n');
            }
            let drift = match rule {
                None => Some("  no creation rule matches it".to_string()),
                Some(c) if c.is_empty() => None,
                Some(c) => {
                    let mut parts: Vec<String> = c.added.iter().map(|k| format!("+ {k}")).collect();
                    parts.extend(c.removed.iter().map(|k| format!("- {k}")));
                    Some(format!(
                        "  differs from its creation rule: {}",
                        parts.join(", ")
                    ))
                }
            };
            if let Some(d) = drift {
                out.push_str(&command_error::one_line(&d));
                out.push('\n');
            }
        }
    }
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|e| Error::io("<stdout>", e))
}
