//! `migrate`: secrets kept in S3 moved into push targets' accounts, and templates'
//! references rewritten to them.

use super::*;

pub fn migrate(cmd: MigrateCommand, config: Option<&Path>, env: &Env) -> Result<()> {
    match cmd {
        MigrateCommand::S3(a) => migrate_s3(a, config, env),
        MigrateCommand::Refs(a) => migrate_refs(a, config, env),
    }
}

/// Where a migration's objects go: the command line's service in the default account,
/// or a push target (its service, account, region and prefix).
pub(super) struct Destination {
    /// The push target's name.
    pub(super) label: Option<String>,
    /// The objects it takes: keys under this.
    pub(super) s3_prefix: String,
    pub(super) service: Service,
    pub(super) scope: Scope,
    pub(super) naming: migrate::Naming,
    pub(super) settings: Option<Settings>,
}

impl Destination {
    fn error(&self, e: Error) -> Error {
        match &self.label {
            Some(l) => e.for_target(format!("migrate to {l}")),
            None => e,
        }
    }
}

/// The destinations of `--target S3-PREFIX=TARGET`s, or else the one of `--to`.
pub(super) fn destinations(
    targets: &[(String, String)],
    to: Option<Service>,
    s3_prefix: &str,
    name_prefix: Option<&str>,
    region: &Option<String>,
    config: Option<&Path>,
) -> Result<Vec<Destination>> {
    if targets.is_empty() {
        let service = to.ok_or_else(|| Error::Usage("give --to, or --target".into()))?;
        return Ok(vec![Destination {
            label: None,
            s3_prefix: s3_prefix.to_string(),
            service,
            scope: scope(region),
            naming: migrate::Naming::Bucket {
                name_prefix: name_prefix.map(str::to_string),
            },
            settings: None,
        }]);
    }
    let (file, config) = push_targets(
        config,
        "--target needs a .coffer.yaml with a push: list here or above",
        "has no push: targets for --target",
    )?;
    let mut out = Vec::new();
    for (s3_prefix, name) in targets {
        let t = config
            .push
            .iter()
            .find(|t| &t.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = config.push.iter().map(|t| t.name.as_str()).collect();
                Error::Usage(format!(
                    "no push target {name:?} in {} (it has: {})",
                    file.display(),
                    known.join(", ")
                ))
            })?;
        let coffer::config::TargetLayout::Each(prefix) = &t.layout else {
            return Err(Error::Usage(format!(
                "target {name}: holds one whole secret; migrating needs a target with a prefix"
            )));
        };
        out.push(Destination {
            label: Some(t.name.clone()),
            s3_prefix: s3_prefix.clone(),
            service: t.service,
            scope: target_scope(t),
            naming: migrate::Naming::Under {
                s3_prefix: s3_prefix.clone(),
                prefix: prefix.clone(),
            },
            settings: Some(t.settings.clone()),
        });
    }
    Ok(out)
}

/// Every destination's profile exists, before the first call.
pub(super) fn check_all(dests: &[Destination], env: &Env) -> Result<()> {
    for d in dests {
        env.aws()
            .check(&d.scope)
            .map_err(|why| d.error(why.into()))?;
    }
    Ok(())
}

/// `(S3 prefix, destination)` pairs; a prefix given twice is a mistake.
pub(super) fn routes(dests: &[Destination]) -> Result<Vec<(String, usize)>> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for (i, d) in dests.iter().enumerate() {
        if out.iter().any(|(p, _)| *p == d.s3_prefix) {
            return Err(Error::Usage(format!(
                "--target {:?} is given twice",
                d.s3_prefix
            )));
        }
        out.push((d.s3_prefix.clone(), i));
    }
    Ok(out)
}

/// One line of the migration's table.
pub(super) struct Row {
    /// The destination it goes to.
    pub(super) dest: usize,
    pub(super) source: String,
    pub(super) name: String,
    pub(super) account: String,
    pub(super) status: std::result::Result<String, String>,
}

pub(super) fn migrate_s3(args: MigrateS3Args, config: Option<&Path>, env: &Env) -> Result<()> {
    let source = scope(&args.create.region);
    let dests = destinations(
        &args.routes.targets,
        args.to.map(ServiceArg::service),
        &args.prefix,
        args.routes.name_prefix.as_deref(),
        &args.create.region,
        config,
    )?;
    if !args.routes.targets.is_empty() && args.create.region.is_some() {
        return Err(Error::Usage(
            "--region with --target: each target has its own region in .coffer.yaml".into(),
        ));
    }
    check_all(&dests, env)?;
    let routes = routes(&dests)?;
    // No secret keys these tokens: a public hash of a value would let anyone who can list
    // versions test guesses. Per-run tokens still make a retried call idempotent.
    let token_key = Arc::new(SecretBox::new(Box::new(
        *coffer::cipher::DataKey::generate().expose(),
    )));
    let mut rows: Vec<Row> = Vec::new();
    let mut planned = Vec::new();
    for (i, d) in dests.iter().enumerate() {
        let mut objects = migrate::read_objects(env.aws(), &source, &args.bucket, &d.s3_prefix)?;
        // An object under two routes' prefixes goes by the longer one only.
        objects.retain(|(key, _)| migrate::route(&routes, key) == Some(&i));
        if objects.is_empty() {
            eprintln!(
                "coffer: no objects under s3://{}/{}",
                args.bucket, d.s3_prefix
            );
            continue;
        }
        let target = Target {
            name: d.label.clone(),
            service: d.service,
            prefix: d.naming.name(d.service, &args.bucket, &d.s3_prefix),
            settings: match &d.settings {
                Some(s) => s.clone(),
                None => settings(&args.create)?,
            },
        };
        let pusher = Pusher::connect(env.aws(), &d.scope, target).map_err(|e| d.error(e))?;
        let account = pusher.account().map_err(|e| d.error(e))?;
        let mut desired = Vec::new();
        for (key, got) in objects {
            let source = format!("s3://{}/{key}", args.bucket);
            let name = d.naming.name(d.service, &args.bucket, &key);
            let status = match got {
                Err(why) => Err(format!("cannot read the object: {why}")),
                Ok(value) => match (
                    d.service.check_name(&name),
                    d.service.check_value(value.as_bytes().len()),
                ) {
                    (Some(why), _) => Err(format!("not a valid name: {why}")),
                    (None, Some(why)) => Err(format!("the object {why}")),
                    (None, None) => {
                        desired.push(Desired {
                            name: name.clone(),
                            key_path: Vec::new(),
                            value,
                            source: source.clone(),
                            token_key: token_key.clone(),
                        });
                        Ok(String::new())
                    }
                },
            };
            rows.push(Row {
                dest: i,
                source,
                name,
                account: account.clone(),
                status,
            });
        }
        let plan = pusher.plan(desired, None, false).map_err(|e| d.error(e))?;
        if let Some(label) = &d.label {
            let region = pusher.region().unwrap_or_else(|| "no region".into());
            eprintln!(
                "{}",
                command_error::one_line(&format!(
                    "{label}: {} in account {account}, {region}",
                    plan.service
                ))
            );
        }
        print_plan(&mut std::io::stderr(), &plan)?;
        planned.push((i, pusher, plan));
    }
    if rows.is_empty() {
        return Ok(());
    }
    if args.create.dry_run {
        let actions: HashMap<(usize, &str), Action> = planned
            .iter()
            .flat_map(|(i, _, plan)| {
                plan.changes
                    .iter()
                    .map(move |c| ((*i, c.name.as_str()), c.action))
            })
            .collect();
        for row in rows.iter_mut().filter(|r| r.status.is_ok()) {
            row.status = Ok(match actions.get(&(row.dest, row.name.as_str())) {
                Some(Action::Create | Action::Restore) => "would create",
                Some(Action::Update) => "would update",
                _ => "already there",
            }
            .into());
        }
        print_table(&rows);
        return Ok(());
    }
    for (i, pusher, plan) in &planned {
        let outcomes = apply(pusher, plan, Deletion::Force);
        let applied: HashMap<&str, &Outcome> =
            outcomes.iter().map(|o| (o.name.as_str(), o)).collect();
        let names: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| {
                applied
                    .get(c.name.as_str())
                    .is_none_or(|o| o.result.is_ok())
            })
            .map(|c| c.name.clone())
            .collect();
        let read_back = pusher.read_back(names)?;
        let wanted: HashMap<&str, &Payload> = plan
            .desired()
            .iter()
            .map(|d| (d.name.as_str(), &d.value))
            .collect();
        for row in rows.iter_mut().filter(|r| r.dest == *i) {
            if row.status.is_err() || !wanted.contains_key(row.name.as_str()) {
                continue;
            }
            let done = match applied.get(row.name.as_str()) {
                Some(o) => match &o.result {
                    Err(why) => {
                        row.status = Err(why.to_string());
                        continue;
                    }
                    Ok(_) if o.action == Action::Update => "updated",
                    Ok(_) => "created",
                },
                None => "already there",
            };
            row.status = match (
                read_back.get(row.name.as_str()),
                wanted.get(row.name.as_str()),
            ) {
                (Some(got), Some(want)) if got == *want => Ok(format!("{done}, verified")),
                _ => Err("read back a different value".into()),
            };
        }
    }
    print_table(&rows);
    let failed = rows.iter().filter(|r| r.status.is_err()).count();
    if failed > 0 {
        return Err(Error::PartlyApplied {
            failed,
            total: rows.len(),
        });
    }
    Ok(())
}

/// A line of a report on stdout, with what came from files or AWS made safe to show.
pub(super) fn report(line: &str) {
    // A reader gone away ends the report, not the work it reports on.
    let _ = crate::cli::print_out(&format!("{}\n", command_error::one_line(line)));
}

pub(super) fn print_table(rows: &[Row]) {
    let w1 = rows
        .iter()
        .map(|r| r.source.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let w2 = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(6);
    let w3 = rows
        .iter()
        .map(|r| r.account.len())
        .max()
        .unwrap_or(0)
        .max(7);
    report(&format!(
        "{:w1$}  {:w2$}  {:w3$}  STATUS",
        "SOURCE", "SECRET", "ACCOUNT"
    ));
    for r in rows {
        let status = match &r.status {
            Ok(s) => s.clone(),
            Err(why) => format!("FAILED: {why}"),
        };
        // S3 keys and AWS's words come from elsewhere: nothing raw to the terminal.
        report(&format!(
            "{:w1$}  {:w2$}  {:w3$}  {status}",
            r.source, r.name, r.account
        ));
    }
}

pub(super) fn migrate_refs(args: MigrateRefsArgs, config: Option<&Path>, env: &Env) -> Result<()> {
    let FromArg::S3 = args.from;
    let dests = destinations(
        &args.routes.targets,
        args.to.map(|t| match t {
            ToRefArg::AwsSecret => Service::SecretsManager,
            ToRefArg::Ssm => Service::Ssm,
        }),
        "",
        args.routes.name_prefix.as_deref(),
        &args.region,
        config,
    )?;
    check_all(&dests, env)?;
    let routes = routes(&dests)?;
    let dest_of = |key: &str| {
        let d = &dests[*migrate::route(&routes, key)?];
        Some((d.service, d.naming.clone(), d.label.clone()))
    };
    let index_of = |m: &Move| migrate::route(&routes, &m.key).copied();
    let mut templates = Vec::new();
    for t in &args.templates {
        let text = std::fs::read_to_string(t).map_err(|e| Error::io(t, e))?;
        // The first failure, with its line (render lists them all).
        let tpl = coffer::render::parse(&text).map_err(|fs| Error::Syntax {
            file: t.display().to_string(),
            error: fs.first().map_or_else(
                || coffer::format::SyntaxError::from("not a template".to_string()),
                |f| coffer::format::SyntaxError::line(f.line, &f.reason),
            ),
        })?;
        templates.push((t, text, tpl));
    }
    // Whether each secret exists, asked in its own account; and the account, to show.
    let mut exists: HashMap<(usize, String), std::result::Result<bool, coffer::aws::CallError>> =
        HashMap::new();
    let mut accounts: HashMap<usize, String> = HashMap::new();
    for (i, d) in dests.iter().enumerate() {
        let mut names: Vec<String> = templates
            .iter()
            .flat_map(|(_, _, tpl)| migrate::s3_moves(&tpl.refs, &dest_of))
            .filter(|m| index_of(m) == Some(i))
            .map(|m| m.target)
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            continue;
        }
        if d.label.is_some() {
            let account = env
                .aws()
                .account(&d.scope)
                .map_err(|why| d.error(why.into()))?;
            accounts.insert(i, account);
        }
        for (name, found) in
            migrate::secrets_exist(env.aws(), &d.scope, d.service, names).map_err(|e| d.error(e))?
        {
            exists.insert((i, name), found);
        }
    }
    let mut unknown = 0;
    for (path, text, tpl) in &templates {
        let file = path.display();
        let moves = migrate::s3_moves(&tpl.refs, &dest_of);
        let mut chosen: Vec<&Move> = Vec::new();
        for m in &moves {
            let line = m.reference.line;
            let Some(i) = index_of(m) else { continue };
            let account = accounts
                .get(&i)
                .map(|a| format!(" (account {a})"))
                .unwrap_or_default();
            match exists.get(&(i, m.target.clone())) {
                Some(Ok(true)) => {
                    report(&format!(
                        "changed {file}:{line}: {} -> {}{account}",
                        m.reference.uri,
                        m.uri()
                    ));
                    chosen.push(m);
                }
                Some(Ok(false)) => report(&format!(
                    "left    {file}:{line}: {} (no secret {}{account})",
                    m.reference.uri, m.target
                )),
                Some(Err(why)) => {
                    unknown += 1;
                    report(&format!(
                        "left    {file}:{line}: {} ({}: {why})",
                        m.reference.uri, m.target
                    ));
                }
                None => unknown += 1,
            }
        }
        for r in &tpl.refs {
            if let Some(Ok(coffer::aws::read::AwsRef::Object { key, .. })) =
                coffer::aws::read::AwsRef::parse(&r.uri)
            {
                if migrate::route(&routes, &key).is_none() {
                    report(&format!(
                        "left    {file}:{}: {} (no --target for it)",
                        r.line, r.uri
                    ));
                }
            }
        }
        if !chosen.is_empty() && !args.dry_run {
            let new = migrate::rewrite(text, &chosen);
            coffer::fsutil::write_atomic(
                path,
                new.as_bytes(),
                0o644,
                None,
                coffer::fsutil::Target::InPlace,
            )?;
        }
    }
    if unknown > 0 {
        return Err(Error::Aws(coffer::aws::CallError::new(
            format!("{unknown} reference(s) left"),
            None,
            "AWS could not say whether their secret exists",
        )));
    }
    Ok(())
}
