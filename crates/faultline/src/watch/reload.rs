//! SIGHUP: the config file and the signature files read again, applied
//! whole or not at all; what only a restart applies is named.

use anyhow::Result;

use super::{WatchArgs, with_config};

/// What SIGHUP reloads: the config file (with the command line over it,
/// as at the start) and the signature files. Sources, sinks and the
/// listening addresses stay as started; changes to them are named and
/// take effect at the next start.
pub(super) struct Reloader {
    /// The command line's arguments after `watch`.
    pub(super) command_line: Vec<String>,
    /// The settings the command line gave.
    pub(super) given: WatchArgs,
    pub(super) matches: Option<clap::ArgMatches>,
    /// The settings running now.
    pub(super) running: WatchArgs,
}

/// A reload's outcome, applied only whole.
pub(super) struct Reload {
    pub(super) args: WatchArgs,
    pub(super) library: faultline_signatures::Library,
    pub(super) matcher: faultline_matcher::Matcher,
    /// Settings that changed but are applied at the next start.
    pub(super) unapplied: Vec<&'static str>,
}

impl Reloader {
    /// The settings: the command line's, over the config file's if any.
    pub(super) fn settings(&self) -> Result<WatchArgs> {
        match &self.given.config {
            Some(file) => with_config(&self.given, file, self.matches.as_ref(), &self.command_line),
            None => Ok(self.given.clone()),
        }
    }

    /// Reads the config and the signatures again; an error leaves
    /// everything as it was.
    pub(super) fn reload(&mut self) -> Result<Reload> {
        let args = self.settings()?;
        let (library, matcher) = crate::setup::library(&args.signature_dirs)?;
        let unapplied = restart_only_changes(&self.running, &args);
        self.running = args.clone();
        Ok(Reload {
            args,
            library,
            matcher,
            unapplied,
        })
    }
}

/// The settings that differ between `old` and `new` among those a reload
/// does not apply (all but the signatures and the silence limits).
pub(super) fn restart_only_changes(old: &WatchArgs, new: &WatchArgs) -> Vec<&'static str> {
    macro_rules! differing {
        ($($field:ident),* $(,)?) => {{
            let mut names = Vec::new();
            $(
                if format!("{:?}", old.$field) != format!("{:?}", new.$field) {
                    names.push(stringify!($field));
                }
            )*
            names
        }};
    }
    differing!(
        stdin,
        files,
        listen_push,
        kmsg,
        journald,
        journal_directory,
        node,
        loki,
        selector,
        loki_org_id,
        loki_token,
        loki_token_file,
        loki_user,
        loki_password,
        loki_password_file,
        loki_poll,
        loki_lookback,
        loki_tail,
        loki_late,
        loki_max_lag,
        kubernetes,
        kubeconfig,
        namespace,
        kubernetes_inventory_only,
        pod_selector,
        max_log_streams,
        fallback_recover,
        push_max_body,
        push_timeout,
        alertmanagers,
        webhooks,
        webhook_token,
        webhook_token_file,
        webhook_secret,
        webhook_secret_file,
        resend_interval,
        runbook_base,
        listen,
        format,
        state_dir,
        read_existing,
        poll,
        max_files,
        max_streams,
        max_incidents,
        inventory,
        mounts,
        labels,
    )
}
