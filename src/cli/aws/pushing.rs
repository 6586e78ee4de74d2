//! `push`: a file's values, or every push target of the config, planned against what
//! AWS holds, then applied.

use super::*;

/// The file's path relative to the root of its git repository, `/`-separated: what
/// `coffer:source` says, the same from every clone and working directory.
pub(super) fn source_name(file: &Path) -> String {
    repo_relative(file).unwrap_or_else(|| file.display().to_string())
}

/// One file's contribution to a push: its secrets, and what `--emit ecs` says of them.
pub(super) struct FileSecrets {
    pub(super) desired: Vec<Desired>,
    /// (variable name, secret or parameter name, JSON key inside the secret).
    pub(super) ecs: Option<Vec<(String, String, Option<String>)>>,
}

/// Open `file` and say which secrets it asks for.
pub(super) fn file_secrets(
    file: &Path,
    format: Format,
    keyring: &coffer::keys::Keyring,
    layout: &Layout,
    service: Service,
    source: &str,
) -> Result<FileSecrets> {
    let name = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    let (opened, covered) = crate::cli::open_file(file, format, bytes, keyring, false)?;
    if covered.is_some_and(|c| !c.committed_key) {
        crate::cli::warn(&format!(
            "{name}: no encrypted version of it is staged or committed, so the request tokens of this push come from a data key made for it (a retry after it may write a second version; `git add` the file first to avoid that)"
        ));
    }
    let root = match opened.doc.docs.as_slice() {
        [d] => opened.value(&d.root)?,
        _ => {
            return Err(Error::Unsupported {
                file: name,
                what: "a file of several YAML documents cannot be pushed".into(),
            })
        }
    };
    let raw = if opened.is_whole_file() {
        Some(Payload::from_bytes(opened.plaintext()?.to_vec()))
    } else {
        None
    };
    let token_key = opened.push_token_key();
    let desired = push::desired(
        &name,
        &root,
        raw.clone(),
        layout,
        service,
        source,
        &token_key,
    )?;
    // A binary file has no keys for ECS to pick.
    let ecs = raw
        .is_none()
        .then(|| ecs_entries(&root, &desired, layout, opened.format == Format::Dotenv));
    Ok(FileSecrets { desired, ecs })
}

/// A planned push to one place: what `apply`, `--check` and `--emit` need.
pub(super) struct Planned<'s> {
    /// The target's name (pushes of targets only).
    pub(super) label: Option<String>,
    pub(super) pusher: Pusher<'s>,
    pub(super) plan: Plan,
    pub(super) ecs: Option<Vec<(String, String, Option<String>)>>,
}

/// Where and how to write, from `push FILE`'s flags.
pub(super) fn file_layout(args: &PushArgs) -> Result<(Service, Layout)> {
    Ok(match (args.to, &args.name, &args.prefix, &args.path) {
        (None, ..) => {
            return Err(Error::Usage(
                "push FILE needs --to secretsmanager or --to ssm".into(),
            ))
        }
        (Some(ServiceArg::Secretsmanager), Some(name), None, None) => (
            Service::SecretsManager,
            Layout::Whole { name: name.clone() },
        ),
        (Some(ServiceArg::Secretsmanager), None, Some(prefix), None) => (
            Service::SecretsManager,
            Layout::Each {
                prefix: prefix.clone(),
            },
        ),
        (Some(ServiceArg::Secretsmanager), ..) => {
            return Err(Error::Usage(
                "--to secretsmanager needs --name NAME (one secret) or --prefix PREFIX --each"
                    .into(),
            ))
        }
        (Some(ServiceArg::Ssm), None, None, Some(path)) => {
            let mut prefix = path.clone();
            if !prefix.ends_with('/') {
                prefix.push('/');
            }
            (Service::Ssm, Layout::Each { prefix })
        }
        (Some(ServiceArg::Ssm), ..) => {
            return Err(Error::Usage(
                "--to ssm needs --path /PATH/ (and no --name or --each)".into(),
            ))
        }
    })
}

pub(super) fn layout_prefix(layout: &Layout) -> String {
    match layout {
        Layout::Whole { name } => name.clone(),
        Layout::Each { prefix } => prefix.clone(),
    }
}

/// `config`: the global `--config`, where the targets are (default: the nearest config).
pub fn push(args: PushArgs, config: Option<&Path>, env: &Env) -> Result<()> {
    let planned = match &args.file {
        Some(file) => vec![plan_file(file, &args, env)?],
        None => plan_targets(&args, config, env)?,
    };
    // stdout carries --emit's data when asked for; the plan then goes to stderr.
    let mut plan_out: Box<dyn Write> = if args.emit.is_some() {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    for (i, p) in planned.iter().enumerate() {
        if let Some(label) = &p.label {
            let io = |e| Error::io("<stdout>", e);
            if i > 0 {
                writeln!(plan_out).map_err(io)?;
            }
            let region = p.pusher.region().unwrap_or_else(|| "no region".into());
            let header = format!(
                "{label}: {} in account {}, {region}",
                p.plan.service,
                p.pusher.account()?
            );
            writeln!(plan_out, "{}", command_error::one_line(&header)).map_err(io)?;
        }
        print_plan(&mut plan_out, &p.plan)?;
    }
    if args.check {
        let changes: usize = planned.iter().map(|p| p.plan.pending()).sum();
        return match changes {
            0 => Ok(()),
            changes => Err(Error::Drift { changes }),
        };
    }
    if args.create.dry_run {
        return Ok(());
    }
    let deletion = if args.force_delete {
        Deletion::Force
    } else {
        Deletion::Recoverable(args.recovery_window)
    };
    let (mut failed, mut total) = (0, 0);
    let mut arns_of: Vec<HashMap<String, String>> = Vec::new();
    for p in &planned {
        let outcomes = apply(&p.pusher, &p.plan, deletion);
        if let Err(Error::PartlyApplied {
            failed: f,
            total: t,
        }) = finish(p.label.as_deref(), &p.plan, &outcomes)
        {
            failed += f;
            total += t;
        }
        let mut arns: HashMap<String, String> = p
            .plan
            .changes
            .iter()
            .filter_map(|c| c.arn.clone().map(|a| (c.name.clone(), a)))
            .collect();
        arns.extend(
            outcomes
                .iter()
                .filter_map(|o| o.result.as_ref().ok()?.clone().map(|a| (o.name.clone(), a))),
        );
        arns_of.push(arns);
    }
    if failed > 0 {
        return Err(Error::PartlyApplied { failed, total });
    }
    if let Some(EmitArg::Ecs) = args.emit {
        emit_ecs(&planned, arns_of)?;
    }
    Ok(())
}

/// `push FILE` with its flags.
pub(super) fn plan_file<'s>(file: &Path, args: &PushArgs, env: &'s Env) -> Result<Planned<'s>> {
    let (service, layout) = file_layout(args)?;
    if args.prune && matches!(layout, Layout::Whole { .. }) {
        return Err(Error::Usage(
            "--prune needs --each: one secret holding the whole file has no keys to remove".into(),
        ));
    }
    let format = args
        .input_type
        .map_or_else(|| Format::from_path(file), Into::into);
    let source = args.source.clone().unwrap_or_else(|| source_name(file));
    let secrets = file_secrets(file, format, &env.keyring()?, &layout, service, &source)?;
    if args.emit.is_some() && secrets.ecs.is_none() {
        return Err(Error::Usage(format!(
            "{}: --emit ecs needs keys; a binary file has none",
            file.display()
        )));
    }
    let target = Target {
        name: None,
        service,
        prefix: layout_prefix(&layout),
        settings: settings(&args.create)?,
    };
    let pusher = Pusher::connect(env.aws(), &scope(&args.create.region), target)?;
    // Secrets of this file gone from it are looked for with --each: reported, or deleted
    // with --prune.
    let owner = matches!(layout, Layout::Each { .. }).then_some(push::Owner::Source(&source));
    let plan = pusher.plan(secrets.desired, owner, args.prune)?;
    Ok(Planned {
        label: None,
        pusher,
        plan,
        ecs: secrets.ecs,
    })
}

/// The config file (`--config`, else the nearest) and its push targets, which it must have.
pub(crate) fn push_targets(
    config: Option<&Path>,
    no_file: &str,
    no_targets: &str,
) -> Result<(PathBuf, coffer::config::Config)> {
    let config_file = match config {
        Some(c) => c.to_path_buf(),
        None => {
            let here = std::env::current_dir().map_err(|e| Error::io(".", e))?;
            coffer::config::find(&here).ok_or_else(|| Error::Usage(no_file.into()))?
        }
    };
    let config = coffer::config::Config::load(&config_file)?;
    if config.push.is_empty() {
        return Err(Error::Config {
            file: config_file.display().to_string(),
            message: no_targets.into(),
        });
    }
    Ok((config_file, config))
}

/// `push` without a file: every target of the config's `push:` list, or those named.
pub(super) fn plan_targets<'s>(
    args: &PushArgs,
    config: Option<&Path>,
    env: &'s Env,
) -> Result<Vec<Planned<'s>>> {
    let flag = [
        (args.create.kms_key_id.is_some(), "--kms-key-id"),
        (!args.create.tags.is_empty(), "--tag"),
        (args.create.description.is_some(), "--description"),
        (args.create.region.is_some(), "--region"),
        (args.input_type.is_some(), "--input-type"),
    ]
    .into_iter()
    .find(|(given, _)| *given);
    if let Some((_, flag)) = flag {
        return Err(Error::Usage(format!(
            "{flag} is for `push FILE`; a target sets it in the config's push: list"
        )));
    }
    let (config_file, config) = push_targets(
        config,
        "push needs a FILE, or a .coffer.yaml with a push: list here or above",
        "has no push: targets; add some, or give push a FILE",
    )?;
    let shown = config_file.display().to_string();
    for name in &args.targets {
        if !config.push.iter().any(|t| &t.name == name) {
            let known: Vec<&str> = config.push.iter().map(|t| t.name.as_str()).collect();
            return Err(Error::Usage(format!(
                "no push target {name:?} in {shown} (it has: {})",
                known.join(", ")
            )));
        }
    }
    let base = config_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let keyring = env.keyring()?;
    let chosen: Vec<&coffer::config::PushTarget> = config
        .push
        .iter()
        .filter(|t| args.targets.is_empty() || args.targets.contains(&t.name))
        .collect();
    // Every target's profile exists, before the first call.
    for t in &chosen {
        env.aws()
            .check(&target_scope(t))
            .map_err(|why| Error::from(why).for_target(format!("push {}", t.name)))?;
    }
    let mut out = Vec::new();
    for t in chosen {
        out.push(
            plan_target(t, &base, &keyring, args, env)
                .map_err(|e| e.for_target(format!("push {}", t.name)))?,
        );
    }
    Ok(out)
}

pub(crate) fn target_scope(t: &coffer::config::PushTarget) -> Scope {
    Scope {
        profile: t.aws_profile.clone(),
        region: t.region.clone(),
        role: t.role.clone(),
    }
}

pub(super) fn plan_target<'s>(
    t: &coffer::config::PushTarget,
    base: &Path,
    keyring: &coffer::keys::Keyring,
    args: &PushArgs,
    env: &'s Env,
) -> Result<Planned<'s>> {
    use coffer::config::TargetLayout;
    let layout = match &t.layout {
        TargetLayout::Whole(name) => Layout::Whole { name: name.clone() },
        TargetLayout::Each(prefix) => Layout::Each {
            prefix: prefix.clone(),
        },
    };
    let prune = t.prune || args.prune;
    if prune && matches!(layout, Layout::Whole { .. }) {
        return Err(Error::Usage(format!(
            "target {}: --prune needs a prefix; one secret holding a whole file has no keys to remove",
            t.name
        )));
    }
    let mut files = Vec::new();
    for pattern in &t.files {
        files.extend(coffer::glob::expand(base, pattern).map_err(|e| Error::io(base, e))?);
    }
    files.sort();
    files.dedup();
    if files.is_empty() {
        if prune {
            // Everything the target made would look left over.
            return Err(Error::Refused(format!(
                "target {}: no file matches {}, and pruning would delete everything it made",
                t.name,
                t.files.join(", ")
            )));
        }
        crate::cli::warn(&format!(
            "target {}: no file matches {}",
            t.name,
            t.files.join(", ")
        ));
    }
    if files.len() > 1 && matches!(layout, Layout::Whole { .. }) {
        return Err(Error::Usage(format!(
            "target {}: secret: holds one file, and {} match",
            t.name,
            files.len()
        )));
    }
    let mut desired: Vec<Desired> = Vec::new();
    let mut ecs = Some(Vec::new());
    for file in &files {
        // Outside a repository, the path from the config file's directory: still the same
        // from every working directory.
        let source = repo_relative(file)
            .unwrap_or_else(|| coffer::glob::slashed(file.strip_prefix(base).unwrap_or(file)));
        let secrets = file_secrets(
            file,
            Format::from_path(file),
            keyring,
            &layout,
            t.service,
            &source,
        )?;
        for d in &secrets.desired {
            if let Some(other) = desired.iter().find(|o| o.name == d.name) {
                return Err(Error::Refused(format!(
                    "target {}: {} and {} both make {:?}",
                    t.name, other.source, d.source, d.name
                )));
            }
        }
        desired.extend(secrets.desired);
        match (&mut ecs, secrets.ecs) {
            (Some(all), Some(mine)) => all.extend(mine),
            _ => ecs = None,
        }
    }
    if args.emit.is_some() && ecs.is_none() {
        return Err(Error::Usage(format!(
            "target {}: --emit ecs needs keys; a binary file has none",
            t.name
        )));
    }
    let target = Target {
        name: Some(t.name.clone()),
        service: t.service,
        prefix: layout_prefix(&layout),
        settings: t.settings.clone(),
    };
    let pusher = Pusher::connect(env.aws(), &target_scope(t), target)?;
    // What the target made, from whichever file: a file removed from git included.
    let owner = matches!(layout, Layout::Each { .. }).then_some(push::Owner::Target(&t.name));
    let plan = pusher.plan(desired, owner, prune)?;
    Ok(Planned {
        label: Some(t.name.clone()),
        pusher,
        plan,
        ecs,
    })
}

/// The ECS `secrets` list of each push, with ARNs: a list for `push FILE`, an object of
/// lists by target name for targets.
pub(super) fn emit_ecs(
    planned: &[Planned<'_>],
    mut arns_of: Vec<HashMap<String, String>>,
) -> Result<()> {
    let mut lists = Vec::new();
    for (p, arns) in planned.iter().zip(arns_of.iter_mut()) {
        let wanted = p.ecs.as_deref().unwrap_or_default();
        if wanted.iter().any(|(_, name, _)| !arns.contains_key(name)) {
            arns.extend(p.pusher.arns()?);
        }
        let mut out = String::from("[");
        for (i, (var, name, json_key)) in wanted.iter().enumerate() {
            let arn = arns.get(name).ok_or_else(|| {
                Error::Aws(coffer::aws::CallError::new(
                    name.as_str(),
                    None,
                    "AWS did not say its ARN; run the push again",
                ))
            })?;
            let value_from = match json_key {
                Some(k) => format!("{arn}:{k}::"),
                None => arn.clone(),
            };
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            out.push_str(&format!(
                "  {{\"name\": {}, \"valueFrom\": {}}}",
                json_string(var),
                json_string(&value_from)
            ));
        }
        out.push_str("\n]");
        lists.push((p.label.clone(), out));
    }
    let text = match lists.as_slice() {
        [(None, list)] => format!("{list}\n"),
        _ => {
            let mut text = String::from("{");
            for (i, (label, list)) in lists.iter().enumerate() {
                text.push_str(if i == 0 { "\n" } else { ",\n" });
                let list = list.replace('\n', "\n  ");
                text.push_str(&format!(
                    "  {}: {list}",
                    json_string(label.as_deref().unwrap_or_default())
                ));
            }
            text.push_str("\n}\n");
            text
        }
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("<stdout>", e))
}

/// (variable name, secret or parameter name, JSON key inside the secret) for each value.
pub(super) fn ecs_entries(
    root: &Value,
    desired: &[Desired],
    layout: &Layout,
    verbatim: bool,
) -> Vec<(String, String, Option<String>)> {
    match layout {
        // ECS reads one top-level key of a JSON secret: `arn:json-key:version-stage:version-id`.
        Layout::Whole { name } => match root {
            Value::Map(entries) => entries
                .iter()
                .map(|(k, _)| {
                    (
                        variable_name(std::slice::from_ref(k), verbatim),
                        name.clone(),
                        Some(k.clone()),
                    )
                })
                .collect(),
            _ => Vec::new(),
        },
        Layout::Each { .. } => desired
            .iter()
            .map(|d| (variable_name(&d.key_path, verbatim), d.name.clone(), None))
            .collect(),
    }
}

pub(super) fn print_plan(out: &mut dyn Write, plan: &Plan) -> Result<()> {
    let io = |e| Error::io("<stdout>", e);
    for note in plan.notes() {
        crate::cli::warn(&note);
    }
    // Names come from the file's keys: no control bytes reach the terminal.
    for c in &plan.changes {
        writeln!(out, "{}", command_error::one_line(&c.to_string())).map_err(io)?;
    }
    writeln!(out, "{}", plan.summary()).map_err(io)?;
    out.flush().map_err(io)
}

/// Apply with a progress bar on a terminal when there is more than a handful to do, one
/// line per change otherwise.
pub(super) fn apply(pusher: &Pusher, plan: &Plan, deletion: Deletion) -> Vec<Outcome> {
    let pending = plan.to_apply();
    // indicatif draws only on a terminal that can show it (not TERM=dumb, not a pipe).
    let bar = Some(indicatif::ProgressBar::new(pending as u64))
        .filter(|bar| pending > 5 && !bar.is_hidden());
    if let Some(bar) = &bar {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .expect("the template is valid"),
        );
    }
    let outcomes = pusher.apply(plan, deletion, |o| match &bar {
        Some(bar) => {
            if o.result.is_err() {
                bar.println(command_error::one_line(&o.to_string()));
            }
            bar.inc(1);
        }
        None => eprintln!("{}", command_error::one_line(&o.to_string())),
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    outcomes
}

/// Say what was applied; a partial apply is an error that lists what was not.
pub(super) fn finish(label: Option<&str>, plan: &Plan, outcomes: &[Outcome]) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    let count = |a: Action| {
        outcomes
            .iter()
            .filter(|o| o.action == a && o.result.is_ok())
            .count()
    };
    let of = label.map(|l| format!(" ({l})")).unwrap_or_default();
    eprintln!(
        "Applied{of}: {} created, {} updated, {} deleted, {} unchanged.",
        count(Action::Create) + count(Action::Restore),
        count(Action::Update),
        count(Action::Delete),
        plan.count(Action::Unchanged)
    );
    if failed.is_empty() {
        return Ok(());
    }
    eprintln!("Not applied:");
    for o in &failed {
        eprintln!("  {}", command_error::one_line(&o.to_string()));
    }
    Err(Error::PartlyApplied {
        failed: failed.len(),
        total: outcomes.len(),
    })
}
