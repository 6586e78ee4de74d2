//! sops's main command and its subcommands, each over the library.

use std::path::Path;
use std::process::ExitCode;

use super::args::{
    DecryptArgs, EditArgs, EncryptArgs, ExecEnvArgs, ExecFileArgs, FilestatusArgs, MainArgs,
    PublishArgs, SetArgs, UnsetArgs,
};
use super::*;
use coffer::sops::OpenOptions;

pub(super) fn run(cli: SopsCli, env: &Env) -> Result<ExitCode> {
    let g = &cli.global;
    if !g.keyservice.is_empty() {
        return fail(
            codes::ERROR_GENERIC,
            "coffer does not use remote key services (--keyservice): keys are used in this process",
        );
    }
    if let Some(order) = &g.decryption_order {
        let mut seen = std::collections::HashSet::new();
        for kind in order.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            if !seen.insert(kind) {
                return fail(
                    codes::DUPLICATE_DECRYPTION_KEY_TYPE,
                    format!("Duplicate decryption key type: {kind}"),
                );
            }
        }
    }
    let done = match cli.command {
        None => return main_command(cli.main, g, env),
        Some(SopsCommand::Encrypt(a)) => encrypt_command(a, g, env),
        Some(SopsCommand::Decrypt(a)) => decrypt_command(a, env),
        Some(SopsCommand::Edit(a)) => return edit_command(a, g, env),
        Some(SopsCommand::Rotate(a)) => super::keys::rotate(
            &a.file,
            &a.io,
            &a.change,
            &a.encryption_context,
            codes::COULD_NOT_READ_INPUT_FILE,
            env,
        ),
        Some(SopsCommand::Set(a)) => set_command(a, env),
        Some(SopsCommand::Unset(a)) => unset_command(a, env),
        Some(SopsCommand::ExecEnv(a)) => return exec_env(a, env),
        Some(SopsCommand::ExecFile(a)) => return exec_file(a, env),
        Some(SopsCommand::Filestatus(a)) => filestatus(a),
        Some(SopsCommand::Updatekeys(a)) => super::keys::updatekeys(a, g, env),
        Some(SopsCommand::Groups(c)) => super::keys::groups(c, env),
        Some(SopsCommand::Completion { shell }) => {
            let mut cmd = SopsCli::command();
            clap_complete::generate(shell, &mut cmd, "sops", &mut std::io::stdout());
            Ok(())
        }
        Some(SopsCommand::Publish(a)) => publish(a, g, env),
        Some(SopsCommand::Keyservice { .. }) => fail(
            codes::ERROR_GENERIC,
            "coffer does not support `sops keyservice`",
        ),
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// `sops [flags] FILE`: -e, -d, -r, --set, or edit.
fn main_command(a: MainArgs, g: &GlobalArgs, env: &Env) -> Result<ExitCode> {
    let Some(file) = a.file.as_deref() else {
        return fail(codes::NO_FILE_SPECIFIED, "Error: no file specified");
    };
    if !a.rest.is_empty() {
        warn("More than one positional argument provided. Only the first one will be used!");
        if let Some(flag) = a.rest.iter().find(|r| r.starts_with('-')) {
            warn(&format!("Note that one of the ignored positional argument is {flag:?}, which looks like a flag. Flags must always be provided before the first positional argument!"));
        }
    }
    a.io.check()?;
    let modes = [a.encrypt, a.decrypt, a.rotate, a.set.is_some()];
    if modes.iter().filter(|m| **m).count() > 1 {
        return fail(
            codes::ERROR_CONFLICTING_PARAMETERS,
            "more than one of --encrypt, --decrypt, --rotate and --set: coffer runs one",
        );
    }
    let exists = std::fs::symlink_metadata(file).is_ok();
    if !exists {
        if a.change.any() {
            return fail(codes::CANNOT_CHANGE_KEYS_FROM_NON_EXISTENT_FILE, format!("Error: cannot add or remove keys on non-existent file {:?}, use `--kms` and `--pgp` instead.", absolute(file).display().to_string()));
        }
        if a.encrypt || a.decrypt || a.rotate {
            return Err(no_such_file(file));
        }
    }
    let name =
        a.io.filename_override
            .clone()
            .unwrap_or_else(|| file.to_path_buf());
    // Everything but decrypting reads the creation rules first, as sops does: a config
    // whose rules miss the file stops the command.
    let rule = if a.decrypt {
        None
    } else {
        creation_rule(g, &name)?
    };
    if a.encrypt {
        note_indent(a.indent);
        encrypt(Some(file), &a.io, &a.keys, &a.selector, rule.as_ref(), env)?;
    } else if a.decrypt {
        let extract = a.extract.as_deref().filter(|e| !e.is_empty());
        decrypt(Some(file), &a.io, extract, a.ignore_mac, a.indent, env)?;
    } else if a.rotate {
        note_indent(a.indent);
        super::keys::rotate(
            file,
            &a.io,
            &a.change,
            &a.keys.encryption_context,
            codes::NO_FILE_SPECIFIED,
            env,
        )?;
    } else if let Some(set) = &a.set {
        let (steps, value) = legacy_set(set)?;
        let types = types(Some(&name), a.io.input_type, a.io.output_type);
        set_value(file, types, &steps, &value, false, a.ignore_mac, env)?;
    } else {
        refuse_show_master_keys(a.show_master_keys)?;
        let (format, _) = types(Some(&name), a.io.input_type, a.io.output_type);
        return edit(file, format, &a.keys, &a.selector, rule, a.ignore_mac, env);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--set '["a"]["b"] JSON'`: split at the first `"] "`.
fn legacy_set(set: &str) -> Result<(Vec<Step>, Zeroizing<String>)> {
    let Some(at) = set.find("] ") else {
        return fail(codes::ERROR_INVALID_SET_FORMAT, "Invalid --set format");
    };
    let (path, value) = (set[..=at].trim_end(), &set[at + 2..]);
    let value = json_value(value)?;
    let steps = tree_path(path).map_err(|_| {
        coded(codes::ERROR_INVALID_SET_FORMAT)(Error::Usage("Invalid --set format".into()))
    })?;
    Ok((steps, value))
}

fn encrypt(
    file: Option<&Path>,
    io: &IoFlags,
    keys: &KeyFlags,
    selector: &SelectorFlags,
    rule: Option<&CreationRule>,
    env: &Env,
) -> Result<()> {
    let name = io.filename_override.as_deref().or(file);
    let (input, output) = types(name, io.input_type, io.output_type);
    let (label, bytes) = read_input(file, codes::NO_FILE_SPECIFIED)?;
    let recipients = new_recipients(keys, rule)?;
    let key = DataKey::generate();
    let mut md = new_metadata(&key, &recipients, rule, selector, env)?;
    // Plaintext that does not parse is sops's "Error unmarshalling file" (2).
    let syntax = |e: Error| match e {
        Error::Syntax { .. } => coded(codes::COULD_NOT_READ_INPUT_FILE)(e),
        e => e.into(),
    };
    let bytes = if output == input {
        bytes
    } else {
        sops::convert_plain(&label, input, output, bytes).map_err(syntax)?
    };
    // A large text's output is written into a private file and checked there, as
    // coffer's own encrypt does.
    let beside = if io.in_place {
        file
    } else {
        io.output.as_deref()
    };
    if let Some(mut staged) = crate::cli::crypt::staged_output(output, bytes.len(), beside) {
        let fallback = sops::encrypt_plain_into(&label, output, bytes, &key, &mut md, &staged)
            .map_err(syntax)?;
        env.accept_layout(fallback)?;
        return write_output_from(io, file, &mut Content::File(&mut staged), false);
    }
    let sealed = sops::encrypt_plain(&label, output, bytes, &key, &mut md).map_err(syntax)?;
    let out = env.accept(sealed)?;
    write_output(io, file, &out, false)
}

fn encrypt_command(a: EncryptArgs, g: &GlobalArgs, env: &Env) -> Result<()> {
    if a.file.is_none() {
        if a.io.in_place {
            return fail(
                codes::ERROR_CONFLICTING_PARAMETERS,
                "Error: cannot use --in-place when reading from stdin",
            );
        }
        if a.io.filename_override.is_none() {
            return fail(
                codes::ERROR_CONFLICTING_PARAMETERS,
                "Error: must specify --filename-override when reading from stdin",
            );
        }
    }
    a.io.check()?;
    note_indent(a.indent);
    let name = a.io.filename_override.as_deref().or(a.file.as_deref());
    if let Some(f) = a.file.as_deref() {
        if std::fs::symlink_metadata(f).is_err() {
            return Err(no_such_file(f));
        }
    }
    let rule = match name {
        Some(n) => creation_rule(g, n)?,
        None => None,
    };
    encrypt(
        a.file.as_deref(),
        &a.io,
        &a.keys,
        &a.selector,
        rule.as_ref(),
        env,
    )
}

fn decrypt(
    file: Option<&Path>,
    io: &IoFlags,
    extract_path: Option<&str>,
    ignore_mac: bool,
    indent: Option<usize>,
    env: &Env,
) -> Result<()> {
    let name = io.filename_override.as_deref().or(file);
    let (input, output) = types(name, io.input_type, io.output_type);
    let steps = match extract_path {
        Some(p) => Some(tree_path(p).map_err(|e| {
            coded(codes::INVALID_TREE_PATH_FORMAT)(Error::Usage(format!(
                "error parsing --extract path: {e}"
            )))
        })?),
        None => None,
    };
    let (label, bytes) = read_input(file, codes::NO_FILE_SPECIFIED)?;
    let opened = sops::open(
        &label,
        input,
        bytes,
        &env.keyring()?,
        OpenOptions::ignoring_mac(ignore_mac),
    )?;
    for w in &opened.warnings {
        warn(w);
    }
    let out = match steps {
        Some(steps) => extract(&opened, &steps, output, indent)?,
        None => plaintext_out(opened, output, indent, env)?,
    };
    write_output(io, file, &out, true)
}

fn decrypt_command(a: DecryptArgs, env: &Env) -> Result<()> {
    if a.io.in_place && a.file.is_none() {
        return fail(
            codes::ERROR_CONFLICTING_PARAMETERS,
            "Error: cannot use --in-place when reading from stdin",
        );
    }
    a.io.check()?;
    let extract = a.extract.as_deref().filter(|e| !e.is_empty());
    decrypt(
        a.file.as_deref(),
        &a.io,
        extract,
        a.ignore_mac,
        a.indent,
        env,
    )
}

/// The editor sops runs: SOPS_EDITOR, EDITOR, else the first of vim, nano and vi.
fn editor(env: &Env) -> Result<String> {
    if let Some(e) = ["SOPS_EDITOR", "EDITOR"]
        .iter()
        .find_map(|k| env.get(k).filter(|v| !v.trim().is_empty()))
    {
        return Ok(e);
    }
    let path = env.get("PATH").unwrap_or_default();
    for candidate in ["vim", "nano", "vi"] {
        if std::env::split_paths(&path).any(|d| d.join(candidate).is_file()) {
            return Ok(candidate.to_string());
        }
    }
    fail(codes::NO_EDITOR_FOUND, "Could not run editor: no editor available: sops attempts to use the editor defined in the SOPS_EDITOR or EDITOR environment variables, and if that's not set defaults to any of vim, nano, vi, but none of them could be found")
}

/// What sops puts in the editor for a new file.
fn example(format: Format) -> &'static [u8] {
    match format {
        Format::Yaml => b"hello: Welcome to SOPS! Edit this file as you please!\nexample_key: example_value\n# Example comment\nexample_array:\n    - example_value1\n    - example_value2\nexample_number: 1234.56789\nexample_booleans:\n    - true\n    - false\n",
        Format::Json => b"{\n\t\"hello\": \"Welcome to SOPS! Edit this file as you please!\",\n\t\"example_key\": \"example_value\",\n\t\"example_array\": [\n\t\t\"example_value1\",\n\t\t\"example_value2\"\n\t],\n\t\"example_number\": 1234.56789,\n\t\"example_booleans\": [\n\t\ttrue,\n\t\tfalse\n\t]\n}\n",
        Format::Dotenv => b"# This is an example file.\nhello=Welcome to SOPS! Edit this file as you please!\nexample_key=example_value\nexample_multiline=foo\\nbar\\nbaz\n",
        Format::Ini => b"; This is an example file.\n[Welcome!]\nhello       = Welcome to SOPS! Edit this file as you please!\nexample_key = example_value\n",
        Format::Binary => b"Welcome to SOPS! Edit this file as you please!",
    }
}

/// Edit `file` (a new one from sops's example); 200 when nothing changed.
fn edit(
    file: &Path,
    format: Format,
    keys: &KeyFlags,
    selector: &SelectorFlags,
    rule: Option<CreationRule>,
    ignore_mac: bool,
    env: &Env,
) -> Result<ExitCode> {
    let editor = editor(env)?;
    let session = super::super::edit::Session {
        file,
        format,
        editor: &editor,
        template: example(format),
        ignore_mac,
        // sops keeps no copy of an edit it could not save; scripts do not expect one.
        rescue: false,
    };
    // Failures of the key set-up keep their own codes: they happen before the editor.
    let mut early: Option<Failure> = None;
    let new_file = || -> coffer::Result<(DataKey, Metadata)> {
        let made = new_recipients(keys, rule.as_ref()).and_then(|r| {
            let key = DataKey::generate();
            new_metadata(&key, &r, rule.as_ref(), selector, env).map(|md| (key, md))
        });
        made.map_err(|f| {
            let message = f.error.to_string();
            early = Some(f);
            Error::Usage(message)
        })
    };
    match session.run(new_file, env) {
        Ok(super::super::edit::Edited::Saved) => Ok(ExitCode::SUCCESS),
        Ok(super::super::edit::Edited::Unchanged) => fail(
            codes::FILE_HAS_NOT_BEEN_MODIFIED,
            "File has not changed, exiting.",
        ),
        Err(e) => Err(early.take().unwrap_or_else(|| e.into())),
    }
}

fn edit_command(a: EditArgs, g: &GlobalArgs, env: &Env) -> Result<ExitCode> {
    refuse_show_master_keys(a.show_master_keys)?;
    note_indent(a.indent);
    let (format, _) = types(Some(&a.file), a.input_type, a.output_type);
    // The subcommand reads the rules only for a new file.
    let rule = if a.file.exists() {
        None
    } else {
        creation_rule(g, &a.file)?
    };
    edit(
        &a.file,
        format,
        &a.keys,
        &a.selector,
        rule,
        a.ignore_mac,
        env,
    )
}

fn set_command(a: SetArgs, env: &Env) -> Result<()> {
    let (format, to) = types(Some(&a.file), a.input_type, a.output_type);
    let data = match (a.value_stdin, a.value_file, &a.value) {
        (true, _, None) => {
            let mut buf = Zeroizing::new(Vec::new());
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| coded(codes::ERROR_GENERIC)(Error::io("<stdin>", e)))?;
            Zeroizing::new(String::from_utf8_lossy(&buf).into_owned())
        }
        (true, _, Some(_)) => return fail(codes::NO_FILE_SPECIFIED, "Error: file specified, or index and value are missing. Need precisely 2 positional arguments since --value-stdin is used."),
        (false, _, None) => return fail(codes::NO_FILE_SPECIFIED, "Error: no file specified, or index and value are missing. Need precisely 3 positional arguments."),
        (false, true, Some(f)) => Zeroizing::new(String::from_utf8_lossy(
            &std::fs::read(f).map_err(|e| coded(codes::ERROR_GENERIC)(Error::io(f, e)))?,
        ).into_owned()),
        (false, false, Some(v)) => Zeroizing::new(v.clone()),
    };
    note_indent(a.indent);
    let steps = tree_path(&a.path).map_err(|_| {
        coded(codes::ERROR_INVALID_SET_FORMAT)(Error::Usage("Invalid set index format".into()))
    })?;
    let value = json_value(&data)?;
    set_value(
        &a.file,
        (format, to),
        &steps,
        &value,
        a.idempotent,
        a.ignore_mac,
        env,
    )
}

fn unset_command(a: UnsetArgs, env: &Env) -> Result<()> {
    let (format, to) = types(Some(&a.file), a.input_type, a.output_type);
    note_indent(a.indent);
    let steps = tree_path(&a.path).map_err(|_| {
        coded(codes::ERROR_INVALID_SET_FORMAT)(Error::Usage("Invalid unset index format".into()))
    })?;
    modify(
        &a.file,
        (format, to),
        false,
        a.ignore_mac,
        env,
        |name, plain| match mutate::unset(name, format, plain, &steps) {
            Ok(changed) => Ok(Some(changed)),
            Err(Error::PathNotFound { .. }) if a.idempotent => Ok(None),
            Err(e @ Error::PathNotFound { .. }) => Err(coded(codes::ERROR_GENERIC)(e)),
            Err(e) => Err(e.into()),
        },
    )
}

/// The child's exit code as sops passes it on (a signal: 255, as Go reports -1).
fn child_code(status: std::process::ExitStatus) -> ExitCode {
    ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(255),
    )
}

fn exec_env(a: ExecEnvArgs, env: &Env) -> Result<ExitCode> {
    if a.user.is_some() {
        return fail(
            codes::ERROR_GENERIC,
            "coffer does not run commands as another user (--user)",
        );
    }
    if a.background {
        return fail(
            codes::ERROR_GENERIC,
            "coffer does not support --background, which sops deprecated",
        );
    }
    let (format, _) = types(Some(&a.file), a.input_type, None);
    let (name, bytes) = read_input(Some(&a.file), codes::COULD_NOT_READ_INPUT_FILE)?;
    let opened = sops::open(
        &name,
        format,
        bytes,
        &env.keyring()?,
        OpenOptions::ignoring_mac(a.ignore_mac),
    )?;
    let vars = environment(&opened)?;
    drop(opened);
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(&a.command);
    if a.pristine {
        cmd.env_clear();
    }
    // The command gets the file's values, not the keys that open every file.
    coffer::keys::remove_key_sources(&mut cmd, env.var_names());
    for (k, v) in &vars {
        cmd.env(k, v.as_str());
    }
    if a.same_process {
        use std::os::unix::process::CommandExt;
        let err = cmd.exec();
        return Err(Error::Exec(format!("cannot run /bin/sh: {err}")).into());
    }
    let status = cmd
        .status()
        .map_err(|e| Error::Exec(format!("cannot run /bin/sh: {e}")))?;
    Ok(child_code(status))
}

fn exec_file(a: ExecFileArgs, env: &Env) -> Result<ExitCode> {
    if a.user.is_some() {
        return fail(
            codes::ERROR_GENERIC,
            "coffer does not run commands as another user (--user)",
        );
    }
    if a.background {
        return fail(
            codes::ERROR_GENERIC,
            "coffer does not support --background, which sops deprecated",
        );
    }
    let (input, output) = types(Some(&a.file), a.input_type, a.output_type);
    let (name, bytes) = read_input(Some(&a.file), codes::COULD_NOT_READ_INPUT_FILE)?;
    let opened = sops::open(
        &name,
        input,
        bytes,
        &env.keyring()?,
        OpenOptions::ignoring_mac(a.ignore_mac),
    )?;
    let plaintext = plaintext_out(opened, output, None, env)?;
    let filename = a.filename.as_deref().unwrap_or("tmp-file");
    if filename.contains('/') || filename == "." || filename == ".." || filename.is_empty() {
        return fail(
            codes::ERROR_GENERIC,
            format!("--filename {filename:?} must be a plain file name"),
        );
    }
    let dir = coffer::fsutil::PrivateDir::new(".sops")?;
    let path = dir.path().join(filename);
    // A FIFO hands the plaintext over without it ever being on disk; it can be read once.
    let writer = if a.no_fifo {
        coffer::fsutil::write_new(&path, &plaintext, 0o600)?;
        None
    } else {
        coffer::fsutil::make_fifo(&path)?;
        let path = path.clone();
        Some(std::thread::spawn(move || {
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
                let _ = f.write_all(&plaintext);
            }
        }))
    };
    let command = a.command.replace("{}", &path.to_string_lossy());
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(&command);
    coffer::keys::remove_key_sources(&mut cmd, env.var_names());
    let status = super::super::deploy::wait_for(&mut cmd, "/bin/sh")?;
    if let Some(w) = writer {
        // A writer still waiting for a reader is let go: opening the FIFO without
        // blocking (and closing it) ends its wait, and its write then fails. It is not
        // waited for: a reader the command left behind may hold the FIFO open.
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&path);
        if w.is_finished() {
            let _ = w.join();
        }
    }
    drop(dir);
    Ok(child_code(status))
}

fn filestatus(a: FilestatusArgs) -> Result<()> {
    let (format, _) = types(Some(&a.file), a.input_type, None);
    let bytes = std::fs::read(&a.file).map_err(|e| {
        coded(codes::ERROR_GENERIC)(Error::Usage(format!(
            "cannot check file status: cannot load encrypted file: Error reading file: {}: {e}",
            a.file.display()
        )))
    })?;
    let encrypted = match sops::read_metadata(&a.file.display().to_string(), format, bytes) {
        Ok((_, md, _)) => md.version.is_some() && md.mac.as_deref().is_some_and(|m| !m.is_empty()),
        Err(Error::NotEncrypted { .. } | Error::Metadata { .. }) => false,
        Err(e) => return Err(coded(codes::ERROR_GENERIC)(e)),
    };
    Ok(super::super::print_out(&format!(
        "{{\"encrypted\":{encrypted}}}\n"
    ))?)
}

/// `sops publish`: each file to the S3 destination its destination rule names, as it is
/// or, with a `recreation_rule` that names keys, encrypted anew for those keys (checked
/// as every encryption is). Asks before each upload unless `--yes`.
fn publish(a: PublishArgs, g: &GlobalArgs, env: &Env) -> Result<()> {
    use coffer::config::{Config, Destination};
    let config_path = match &g.config {
        Some(p) => p.clone(),
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| coded(codes::ERROR_GENERIC)(Error::io(".", e)))?;
            match coffer::config::find(&cwd) {
                Some(p) => p,
                None => return fail(codes::ERROR_GENERIC, "config file not found"),
            }
        }
    };
    let Some(path) = a.file.as_deref() else {
        return fail(codes::NO_FILE_SPECIFIED, "Error: no file specified");
    };
    let meta =
        std::fs::metadata(path).map_err(|e| coded(codes::ERROR_GENERIC)(Error::io(path, e)))?;
    if meta.is_dir() && !a.recursive {
        return fail(
            codes::ERROR_GENERIC,
            "can't operate on a directory without --recursive flag.",
        );
    }
    let config = Config::load(&config_path).map_err(coded(codes::ERROR_GENERIC))?;
    // A directory: every file below it, sorted, `.git` and symlinked directories left
    // out (a link may loop or leave the tree), as coffer's globs walk.
    let files = if meta.is_dir() {
        coffer::glob::expand(path, "**")
            .map_err(|e| coded(codes::ERROR_GENERIC)(Error::io(path, e)))?
    } else {
        vec![path.to_path_buf()]
    };
    for file in files {
        let shown = file.to_string_lossy().into_owned();
        let Some(rule) = config.destination_for(&shown) else {
            return fail(
                codes::ERROR_GENERIC,
                "error loading config: no matching destination found in config",
            );
        };
        let (bucket, prefix) = match &rule.destination {
            Ok(Destination::S3 { bucket, prefix }) => (bucket.clone(), prefix.clone()),
            Ok(Destination::Gcs { .. }) => {
                return fail(codes::ERROR_GENERIC, "coffer does not publish to Google Cloud Storage (gcs_bucket); S3 destinations only")
            }
            Ok(Destination::Vault { .. }) => {
                return fail(codes::ERROR_GENERIC, "coffer does not publish to HashiCorp Vault (vault_path); S3 destinations only")
            }
            Err(why) => return fail(codes::ERROR_GENERIC, why.clone()),
        };
        let name = coffer::aws::publish::object_name(
            path,
            &file,
            a.recursive,
            a.omit_extensions || rule.omit_extensions,
        );
        let (format, _) = types(Some(&file), None, None);
        let (label, bytes) = read_input(Some(&file), codes::COULD_NOT_READ_INPUT_FILE)?;
        let recreation = match &rule.recreation {
            Some(r) => Some(r.recipients()?).filter(|k| !k.is_empty()),
            None => None,
        };
        let contents = match recreation {
            Some(recipients) => {
                let opened = sops::open(
                    &label,
                    format,
                    bytes,
                    &env.keyring()?,
                    OpenOptions::default(),
                )?;
                let key = DataKey::generate();
                let recreation = rule.recreation.as_ref();
                let selector = recreation.and_then(|r| r.selector.clone());
                let mut md =
                    sops::new_metadata(&key, &recipients, env.wrappers(), recreation, selector)?;
                let sealed =
                    sops::encrypt_plain(&label, format, opened.plaintext()?, &key, &mut md)?;
                env.accept(sealed)?
            }
            None => {
                // Only a file sops wrote is published as it is.
                sops::read_metadata(&label, format, bytes.to_vec())?;
                bytes
            }
        };
        let target = format!("s3://{bucket}/{prefix}{name}");
        let question = format!(
            "uploading {} to {target} ? (y/n): ",
            absolute(&file).display()
        );
        if !a.yes && !confirm(&question)? {
            let msg = format!("Publication of {} canceled", absolute(&file).display());
            if a.recursive {
                super::super::print_out(&format!("{msg}\n"))?;
                continue;
            }
            return fail(codes::ERROR_GENERIC, msg);
        }
        coffer::aws::publish::put(
            env.aws(),
            &bucket,
            &format!("{prefix}{name}"),
            contents.to_vec(),
        )
        .map_err(coded(codes::ERROR_GENERIC))?;
    }
    Ok(())
}
