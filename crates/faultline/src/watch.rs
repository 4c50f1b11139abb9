//! `faultline watch`: follow live sources and report failures as they are
//! written, on the time in the logs.
//!
//! Sources send batches of whole lines on one bounded channel, each with
//! a watermark of how far in event time it has delivered. The
//! [`Processor`] matches each batch with the same code as replay and holds
//! its hits until the event clock — the lowest watermark — passes them,
//! then correlates them in time order, prints them and every incident
//! that fires, fires again or resolves ([`drive`] runs the loop). File
//! checkpoints are recorded once every hit read before them is correlated
//! and saved to the state directory every few seconds and on exit, so a
//! restart resumes where processing stopped.

use std::collections::HashMap;
use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use faultline_correlate::Correlator;
use faultline_kubernetes::{KubeConfig, StreamSelector};
use faultline_sinks::alertmanager::{AlertOptions, Alerting, Target};
use faultline_sinks::webhook::{Webhook, WebhookAuth};
use faultline_sources::loki::{self, Health};
use faultline_sources::overlap::Marks;
use faultline_sources::watermark::Watermarks;
use faultline_sources::{Batch, Checkpoints, files, journald, kernel, push, stdin};
use std::sync::atomic::AtomicI64;
use tokio::sync::{mpsc, watch};

use crate::replay::output::use_color;
use crate::replay::silence::SilenceRule;

pub mod config;
mod drive;
mod held;
mod metrics;
mod processor;
mod reload;

use drive::{Clock, Fallback, Inputs, drive};
use processor::{MAX_STREAMS, Processor};
use reload::Reloader;

/// Arguments of `faultline watch`.
#[derive(Clone, Debug, Args)]
pub struct WatchArgs {
    /// Read settings from this YAML file: every flag, named with `_` for
    /// `-` (examples/faultline.yaml explains each); the flags override it.
    /// Check one with `faultline config check FILE`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Secrets that only a config file can give (never a command line).
    #[arg(skip)]
    loki_token: Option<String>,
    #[arg(skip)]
    loki_password: Option<String>,
    #[arg(skip)]
    webhook_token: Option<String>,
    #[arg(skip)]
    webhook_secret: Option<String>,
    /// `-` to read standard input (`kubectl logs -f … | faultline watch -`).
    #[arg(value_name = "-", value_parser = parse_dash)]
    stdin: Option<String>,
    /// Follow the files matching this glob (repeatable), e.g.
    /// '/var/log/pods/*/*/*.log' in a DaemonSet. New files are picked up;
    /// rotation (rename or copytruncate) is followed.
    #[arg(long = "files", value_name = "GLOB")]
    files: Vec<String>,
    /// Accept Loki pushes on this address (e.g. 0.0.0.0:3100): point
    /// promtail, Alloy or Vector at http://ADDR/loki/api/v1/push as a
    /// second client, and detection no longer depends on Loki.
    #[arg(long, value_name = "ADDR")]
    listen_push: Option<std::net::SocketAddr>,
    /// Read the kernel's log records from /dev/kmsg (or PATH): the host's,
    /// in a privileged DaemonSet. Records already in the buffer are
    /// skipped unless --read-existing.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "/dev/kmsg")]
    kmsg: Option<PathBuf>,
    /// Follow journald (`journalctl --output=json --follow`): the kubelet
    /// and other node services.
    #[arg(long)]
    journald: bool,
    /// Follow the journal files in DIR instead of the system journal (the
    /// node's /var/log/journal mounted into a DaemonSet); implies
    /// --journald.
    #[arg(long, value_name = "DIR")]
    journal_directory: Option<PathBuf>,
    /// The node's name for kernel and journald records. Default: $NODE_NAME
    /// (set it from the downward API), else the host name.
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Read from Loki at this URL (e.g. http://loki-gateway.monitoring), the
    /// streams of --selector, paging query_range forward from the start.
    /// Loki answering errors, or not in time, three times in a row is the
    /// `pipeline/loki` incident until it answers again.
    #[arg(long, value_name = "URL")]
    loki: Option<String>,
    /// LogQL stream selector for --loki.
    #[arg(long, value_name = "SELECTOR", default_value = r#"{namespace=~".+"}"#)]
    selector: String,
    /// X-Scope-OrgID for a multi-tenant Loki.
    #[arg(long, value_name = "TENANT")]
    loki_org_id: Option<String>,
    /// A file holding a bearer token for Loki (never printed).
    #[arg(long, value_name = "FILE")]
    loki_token_file: Option<PathBuf>,
    /// A user for basic authentication to Loki (a gateway in front of
    /// it); the password comes from --loki-password-file or the config's
    /// loki_password.
    #[arg(long, value_name = "USER")]
    loki_user: Option<String>,
    /// A file holding the password for --loki-user (never printed).
    #[arg(long, value_name = "FILE")]
    loki_password_file: Option<PathBuf>,
    /// How often to ask Loki for new entries once caught up.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    loki_poll: Duration,
    /// Start reading Loki this far back (e.g. 15m); default: from now. With
    /// --state-dir, a restart catches up from where reading stopped.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    loki_lookback: Option<Duration>,
    /// Once caught up, follow Loki's tail websocket (entries arrive as
    /// they are pushed) instead of polling query_range; a tail that ends is
    /// caught up with query_range.
    #[arg(long)]
    loki_tail: bool,
    /// How late an entry may reach Loki — after newer entries of other
    /// streams, as shippers batch and retry — and still be read: every
    /// poll reads this far back again (more costs more reading, and about
    /// 40 bytes per entry remembered, a million at most). The tail brings
    /// later entries too; they are counted in faultline_late_entries_total.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    loki_late: Duration,
    /// Loki whose newest entry is older than this is unhealthy: it answers
    /// but nothing reaches it.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    loki_max_lag: Duration,
    /// Read the Kubernetes API (in a pod, its service account; else the
    /// kubeconfig): Events as records (probe kills are seen there), the
    /// pods, PVCs and PVs to name what failures belong to, and the pods'
    /// logs — always without --loki; with --loki, only while Loki is
    /// unhealthy (the fallback), from where Loki stopped.
    #[arg(long)]
    kubernetes: bool,
    /// The kubeconfig for --kubernetes (default: $KUBECONFIG, else
    /// ~/.kube/config, when not in a pod).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// With --kubernetes: keep only the inventory of pods, PVCs and PVs
    /// (no Events, no pod logs) — for a DaemonSet that reads its node's
    /// log files beside a standalone faultline that reads the rest.
    #[arg(long)]
    kubernetes_inventory_only: bool,
    /// With --kubernetes: only this namespace.
    #[arg(long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// With --kubernetes: only pods with these labels (a Kubernetes label
    /// selector, e.g. app.kubernetes.io/part-of=immich).
    #[arg(long, value_name = "LABELS")]
    pod_selector: Option<String>,
    /// With --kubernetes: containers whose logs are read at once, at most;
    /// the others wait for a turn.
    #[arg(long, value_name = "N", default_value_t = 500)]
    max_log_streams: usize,
    /// With --loki and --kubernetes: once Loki has been healthy this long
    /// again, pod logs are read from Loki only.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    fallback_recover: Duration,
    /// Largest push body accepted, in bytes (larger: 413).
    #[arg(long, value_name = "BYTES", default_value_t = push::DEFAULT_MAX_BODY)]
    push_max_body: usize,
    /// Longest a push may take to arrive whole; a client that stalls gets
    /// 408 and its connection is let go.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    push_timeout: Duration,
    /// Send incidents to this Prometheus Alertmanager (its base URL, e.g.
    /// http://alertmanager.monitoring:9093); repeatable: every instance of
    /// an HA set gets every alert.
    #[arg(long = "alertmanager", value_name = "URL")]
    alertmanagers: Vec<String>,
    /// Send the same alerts, in Alertmanager's webhook payload (version 4),
    /// to this URL; repeatable.
    #[arg(long = "webhook", value_name = "URL")]
    webhooks: Vec<String>,
    /// A file holding a bearer token for the webhooks (or set
    /// $FAULTLINE_WEBHOOK_TOKEN); never printed.
    #[arg(long, value_name = "FILE")]
    webhook_token_file: Option<PathBuf>,
    /// A file holding a secret to sign webhook bodies with HMAC-SHA256, in
    /// X-Faultline-Signature: sha256=<hex> (or set $FAULTLINE_WEBHOOK_SECRET).
    #[arg(long, value_name = "FILE")]
    webhook_secret_file: Option<PathBuf>,
    /// How often firing alerts are sent again (Alertmanager forgets an
    /// alert four intervals after its last send).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    resend_interval: Duration,
    /// Base URL of the runbooks: alerts link to BASE/<alertname>.
    #[arg(long, value_name = "URL")]
    runbook_base: Option<String>,
    /// Serve /metrics (Prometheus), /healthz and /readyz here. The default
    /// is loopback only; use 0.0.0.0:9464 for Prometheus in the cluster to
    /// scrape it.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    listen: std::net::SocketAddr,
    /// Output format. Default: text on a terminal, json otherwise.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<WatchFormat>,
    /// Where to keep file checkpoints, so a restart resumes where it
    /// stopped. Without it, every start follows files from their end.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// On the very first start, read the files that already exist from
    /// their start instead of their end.
    #[arg(long)]
    read_existing: bool,
    /// How often to look for new lines and files, e.g. 250ms.
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_duration)]
    poll: Duration,
    /// Most files followed at once (each holds a file descriptor; the
    /// open-file limit is raised to fit). When more match --files, the
    /// most recently written are followed, the rest wait, and
    /// faultline_files_unfollowed counts them.
    #[arg(long, value_name = "N", default_value_t = files::DEFAULT_MAX_FILES)]
    max_files: usize,
    /// Most streams (files, containers, Loki and push streams) whose
    /// reading state is kept at once, a few KiB each; beyond, the least
    /// recently active are let go and faultline_streams_evicted_total
    /// counts them. Size it to the memory limit.
    #[arg(long, value_name = "N", default_value_t = MAX_STREAMS)]
    max_streams: usize,
    /// Most incidents kept at once, a few KiB each; beyond, the quiet ones
    /// seen longest ago are let go and faultline_incidents_evicted_total
    /// counts them.
    #[arg(long, value_name = "N", default_value_t = faultline_correlate::MAX_INCIDENTS)]
    max_incidents: usize,
    /// Give every stream this label when it has none of that name
    /// (repeatable): a sidecar names its pod, e.g. --label
    /// namespace=$(POD_NAMESPACE) --label pod=$(POD_NAME) --label
    /// container=postgres, so its hits name them too.
    #[arg(long = "label", value_name = "NAME=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// A directory of *.yaml signature files to add to the built-in
    /// library (repeatable).
    #[arg(long = "signatures", value_name = "DIR")]
    signature_dirs: Vec<PathBuf>,
    /// `kubectl get pods,pvc,pv,nodes -A -o json` output, to tell which PVC,
    /// node and workload each failure belongs to (repeatable).
    #[arg(long, value_name = "FILE")]
    inventory: Vec<PathBuf>,
    /// The node's mount table (mountinfo format), to tell which PVC a
    /// kernel error on a device is about: /proc/1/mountinfo in a DaemonSet
    /// with hostPID, or a saved copy.
    #[arg(long, value_name = "FILE")]
    mounts: Option<PathBuf>,
    /// Report a stream that has been quiet for longer than LIMIT (e.g. 15m)
    /// as a `stream/…` incident, resolved when it speaks again. With
    /// `@LABEL=VALUE,…` only streams whose labels match (e.g.
    /// `10m@namespace=monitoring`). Repeatable; the shortest matching limit
    /// applies. Measured on the clock from the stream's last line.
    #[arg(long, value_name = "LIMIT[@LABEL=VALUE,…]")]
    silence: Vec<SilenceRule>,
}

/// How `watch` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WatchFormat {
    /// Hits and incident changes for people.
    Text,
    /// One JSON object per line: hits and incidents, as replay prints them
    /// (docs/output.md).
    Json,
}

fn parse_dash(text: &str) -> Result<String, String> {
    (text == "-").then(|| text.to_string()).ok_or_else(|| {
        format!(
            "{text:?}: only - (standard input) is read this way; follow files with --files GLOB"
        )
    })
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    faultline_signatures::parse_duration(text)
        .filter(|&ns| ns > 0)
        .map(|ns| Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)))
        .ok_or_else(|| format!("{text:?} is not a duration (examples: 250ms, 1s)"))
}

/// Batches in flight between the sources and the processor.
const CHANNEL: usize = 32;
/// `faultline watch` alone, to parse a config file's settings as flags.
#[derive(clap::Parser)]
#[command(name = "faultline watch")]
struct WatchCommand {
    #[command(flatten)]
    args: WatchArgs,
}

/// `args` with the settings of `file` for every flag the command line
/// (`matches`, whose own arguments are `command_line`) did not give, then
/// the command line's own; and the config's secrets.
fn with_config(
    args: &WatchArgs,
    file: &std::path::Path,
    matches: Option<&clap::ArgMatches>,
    command_line: &[String],
) -> Result<WatchArgs> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the config {}", file.display()))?;
    let config = config::Config::parse(
        &file.display().to_string(),
        &text,
        &|name| std::env::var(name).ok(),
        &|setting| {
            let mut argv = vec!["faultline watch".to_string()];
            argv.extend(setting.as_args(|_| false));
            <WatchCommand as clap::Parser>::try_parse_from(&argv)
                .map(|_| ())
                .map_err(|err| clap_message(&err))
        },
    )
    .map_err(|problems| anyhow::anyhow!("config problems:\n{problems}"))?;
    let given = |id: &str| {
        matches.and_then(|m| m.value_source(id)) == Some(clap::parser::ValueSource::CommandLine)
    };
    let mut argv = vec!["faultline watch".to_string()];
    argv.extend(config.as_args(given));
    argv.extend(command_line.iter().cloned());
    let mut merged = <WatchCommand as clap::Parser>::try_parse_from(&argv)
        .map_err(|err| anyhow::anyhow!("{}: {err}", file.display()))?
        .args;
    merged.loki_token = args.loki_token.clone().or(config.secret("loki_token"));
    merged.loki_password = args
        .loki_password
        .clone()
        .or(config.secret("loki_password"));
    merged.webhook_token = config.secret("webhook_token");
    merged.webhook_secret = config.secret("webhook_secret");
    Ok(merged)
}

/// What clap says is wrong, without its `error:` and usage lines.
fn clap_message(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// `faultline config check FILE`: every problem of the config, or ok.
pub fn check_config(file: &std::path::Path) -> Result<ExitCode> {
    let defaults = <WatchCommand as clap::Parser>::parse_from(["faultline watch"]).args;
    match with_config(&defaults, file, None, &[]) {
        Ok(_) => {
            println!("ok: {}", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            println!("{err:#}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Runs `watch` until its inputs end or it is told to stop (SIGINT,
/// SIGTERM). `matches` are the command line's, to tell the flags given
/// there from a config file's settings.
pub fn run(args: &WatchArgs, matches: Option<&clap::ArgMatches>) -> Result<ExitCode> {
    let mut reloader = Reloader {
        command_line: std::env::args()
            .skip_while(|a| a != "watch")
            .skip(1)
            .collect(),
        given: args.clone(),
        matches: matches.cloned(),
        running: args.clone(),
    };
    reloader.running = reloader.settings()?;
    let running = reloader.running.clone();
    let args = &running;
    if args.stdin.is_none()
        && args.files.is_empty()
        && args.listen_push.is_none()
        && args.loki.is_none()
        && args.kmsg.is_none()
        && !args.journald
        && args.journal_directory.is_none()
        && !args.kubernetes
    {
        bail!(
            "nothing to watch: give --files GLOB (repeatable), --loki URL, --kubernetes, --listen-push ADDR, --kmsg, --journald and/or - for standard input"
        );
    }
    let streams = StreamSelector::parse(&args.selector)
        .map_err(|err| anyhow::anyhow!("--selector: {err}"))?;
    let node = args
        .node
        .clone()
        .or_else(|| std::env::var("NODE_NAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "localhost".to_string());
    let loki_auth = match (&args.loki_user, loki_token(args)?) {
        (Some(user), None) => Some(loki::Auth::Basic {
            user: user.clone(),
            password: secret(args.loki_password_file.as_deref(), "FAULTLINE_LOKI_PASSWORD")?
                .or(args.loki_password.clone())
                .context("--loki-user needs a password: --loki-password-file, $FAULTLINE_LOKI_PASSWORD or loki_password in the config")?,
        }),
        (None, token) => token.map(loki::Auth::Bearer),
        (Some(_), Some(_)) => bail!("give Loki a bearer token or a user, not both"),
    };
    let (library, matcher) = crate::setup::library(&args.signature_dirs)?;
    let mut inventory = crate::setup::inventory(&args.inventory)?;
    if let Some(file) = &args.mounts {
        let table = std::fs::read_to_string(file)
            .with_context(|| format!("reading the mount table {}", file.display()))?;
        inventory.add_mounts(&node, &table);
    }
    let targets = targets(args)?;
    let checkpoints = match &args.state_dir {
        Some(dir) => {
            let (checkpoints, warning) = Checkpoints::load(dir)?;
            warn(warning);
            checkpoints
        }
        None => Checkpoints::default(),
    };
    let format = args.format.unwrap_or(if io::stdout().is_terminal() {
        WatchFormat::Text
    } else {
        WatchFormat::Json
    });
    let color = use_color();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let (tx, rx) = mpsc::channel::<Batch>(CHANNEL);
        let (errors_tx, errors) = mpsc::channel::<String>(CHANNEL);
        let (stop_tx, stop) = watch::channel(false);
        let files_unfollowed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let watermarks = Watermarks::default();
        if !args.files.is_empty() {
            let config = files::FileConfig {
                globs: args.files.clone(),
                poll: args.poll,
                read_existing: args.read_existing,
                checkpoints: checkpoints.clone(),
                max_files: open_file_room(args.max_files, &errors_tx).await,
                unfollowed: files_unfollowed.clone(),
                watermark: watermarks.holding(),
            };
            tokio::spawn(files::follow(config, tx.clone(), errors_tx.clone(), stop));
        }
        let push_rejected = Arc::new(std::sync::atomic::AtomicU64::new(0));
        if let Some(addr) = args.listen_push {
            let listener = push::bind(addr).await?;
            let limits = push::Limits {
                max_body: args.push_max_body,
                timeout: args.push_timeout,
            };
            tokio::spawn(push::serve(
                listener,
                limits,
                tx.clone(),
                push_rejected.clone(),
                stop_tx.subscribe(),
            ));
        }
        let marks = Marks::with_lateness(args.loki_late);
        let loki_position = Arc::new(AtomicI64::new(Clock::start().now()));
        let (health_tx, health) = watch::channel(Health::Healthy);
        if let Some(url) = &args.loki {
            let lookback = args.loki_lookback.unwrap_or_default();
            let saved = match &args.state_dir {
                Some(dir) => {
                    let (saved, warning) = loki::saved_start(dir)?;
                    warn(warning);
                    saved
                }
                None => None,
            };
            let config = loki::LokiConfig {
                url: url.clone(),
                selector: args.selector.clone(),
                org_id: args.loki_org_id.clone(),
                auth: loki_auth.clone(),
                poll: args.loki_poll,
                limit: 5000,
                timeout: Duration::from_secs(10),
                start_ns: saved.unwrap_or_else(|| {
                    Clock::start()
                        .now()
                        .saturating_sub(i64::try_from(lookback.as_nanos()).unwrap_or(i64::MAX))
                }),
                late: args.loki_late,
                state_dir: args.state_dir.clone(),
                max_lag: Some(args.loki_max_lag),
                marks: marks.clone(),
                position: loki_position.clone(),
                tail: args.loki_tail,
                watermark: watermarks.holding(),
            };
            tokio::spawn(loki::follow(
                config,
                tx.clone(),
                health_tx,
                stop_tx.subscribe(),
            ));
        }
        let (inventory_tx, inventory_changes) = mpsc::channel(CHANNEL);
        let kube_stats = Arc::new(faultline_kubernetes::Stats::default());
        // Pod logs from the API: from the start without Loki; while Loki
        // is unhealthy with it.
        let (streaming, streaming_rx) = watch::channel(None);
        if args.kubernetes {
            let client = faultline_kubernetes::client(args.kubeconfig.as_deref())
                .await
                .map_err(anyhow::Error::msg)?;
            let started = Clock::start().now();
            if args.loki.is_none() {
                streaming.send_replace(Some(started));
            }
            let config = KubeConfig {
                namespace: args.namespace.clone(),
                pod_selector: args.pod_selector.clone(),
                streams: Some(streams.clone()),
                max_streams: args.max_log_streams,
                events_since_ns: started,
                inventory_only: args.kubernetes_inventory_only,
            };
            let outputs = faultline_kubernetes::Outputs {
                batches: tx.clone(),
                inventory: inventory_tx.clone(),
                errors: errors_tx.clone(),
                marks: marks.clone(),
                stats: kube_stats.clone(),
            };
            tokio::spawn(faultline_kubernetes::run(
                client,
                config,
                outputs,
                streaming_rx,
                stop_tx.subscribe(),
            ));
        }
        drop(inventory_tx);
        let kmsg_lost = Arc::new(std::sync::atomic::AtomicU64::new(0));
        if let Some(path) = args.kmsg.clone() {
            let (tx, errors_tx, node) = (tx.clone(), errors_tx.clone(), node.clone());
            let lost = kmsg_lost.clone();
            let from_start = args.read_existing;
            let watermark = watermarks.holding();
            // A plain thread: it sleeps between looks for new records, and
            // must not hold up the runtime's shutdown.
            std::thread::spawn(move || {
                if let Err(err) = kernel::read_kmsg(path, node, from_start, tx, lost, watermark) {
                    let _ = errors_tx.blocking_send(format!("kernel log: {err}"));
                }
            });
        }
        if args.journald || args.journal_directory.is_some() {
            let (tx, errors_tx, node) = (tx.clone(), errors_tx.clone(), node.clone());
            let from_start = args.read_existing;
            let directory = args.journal_directory.clone();
            tokio::spawn(async move {
                if let Err(err) = journald::follow_journal(node, from_start, directory, tx).await {
                    let _ = errors_tx.send(format!("journald: {err}")).await;
                }
            });
        }
        if args.stdin.is_some() {
            let tx = tx.clone();
            let errors_tx = errors_tx.clone();
            tokio::spawn(async move {
                if let Err(err) = stdin::read(tokio::io::stdin(), tx).await {
                    let _ = errors_tx.send(format!("standard input: {err}")).await;
                }
            });
        }
        let metrics = Arc::new(metrics::Metrics::new());
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let (metrics, ready, stop) = (metrics.clone(), ready.clone(), stop_tx.subscribe());
            let (errors_tx, listen) = (errors_tx.clone(), args.listen);
            tokio::spawn(async move {
                if let Err(err) = metrics::serve(listen, metrics, ready, stop).await {
                    let _ = errors_tx
                        .send(format!(
                            "{err}; no metrics (choose another address with --listen)"
                        ))
                        .await;
                }
            });
        }
        drop((tx, errors_tx));
        let processor = Processor {
            scratch: matcher.scratch(),
            matcher: Arc::new(matcher),
            correlator: Correlator::new(inventory, library.rules())
                .with_max_incidents(args.max_incidents),
            streams: HashMap::new(),
            max_streams: args.max_streams.max(1),
            color,
            format,
            out: io::BufWriter::new(io::stdout().lock()),
            checkpoints,
            metrics,
            alert_counts: Vec::new(),
            unsent: Default::default(),
            silence: args.silence.clone(),
            extra_labels: args.labels.iter().cloned().collect(),
            held: Default::default(),
            clock: i64::MIN,
            observed_to: i64::MIN,
            alerting: match (targets.is_empty(), &args.state_dir) {
                (true, _) => None,
                (false, state) => {
                    let alerting = Alerting::new(
                        &targets,
                        AlertOptions {
                            resend: args.resend_interval,
                            runbook_base: args.runbook_base.clone(),
                        },
                    );
                    Some(match state {
                        Some(dir) => {
                            let (alerting, warning) = alerting.with_state(dir)?;
                            warn(warning);
                            alerting
                        }
                        None => alerting,
                    })
                }
            },
        };
        ready.store(true, std::sync::atomic::Ordering::Relaxed);
        let inputs = Inputs {
            batches: rx,
            errors,
            health,
            inventory: inventory_changes,
            fallback: (args.kubernetes && !args.kubernetes_inventory_only && args.loki.is_some())
                .then(|| Fallback {
                    streaming,
                    position: loki_position.clone(),
                    recover: args.fallback_recover,
                    healthy_since: None,
                }),
            loki_position: args.loki.is_some().then_some(loki_position),
            kube_stats: args.kubernetes.then_some(kube_stats),
            push_rejected: (push_rejected, 0),
            files_unfollowed,
            kmsg_lost: (kmsg_lost, 0),
            watermarks,
        };
        let result = drive(
            processor,
            inputs,
            reloader,
            args.resend_interval,
            args.state_dir.as_deref(),
        )
        .await;
        let _ = stop_tx.send(true);
        result
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Loki's bearer token: from --loki-token-file, else the config.
fn loki_token(args: &WatchArgs) -> Result<Option<String>> {
    Ok(
        secret(args.loki_token_file.as_deref(), "FAULTLINE_LOKI_TOKEN")?
            .or(args.loki_token.clone()),
    )
}

/// A secret from `file`, else from the environment variable `var`.
fn secret(file: Option<&std::path::Path>, var: &str) -> Result<Option<String>> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the secret in {}", file.display()))?;
        return Ok(Some(text.trim().to_string()));
    }
    Ok(std::env::var(var).ok().filter(|v| !v.is_empty()))
}

/// Where alerts go: the Alertmanagers, then the webhooks.
fn targets(args: &WatchArgs) -> Result<Vec<Target>> {
    let auth = match (
        secret(
            args.webhook_secret_file.as_deref(),
            "FAULTLINE_WEBHOOK_SECRET",
        )?
        .or(args.webhook_secret.clone()),
        secret(
            args.webhook_token_file.as_deref(),
            "FAULTLINE_WEBHOOK_TOKEN",
        )?
        .or(args.webhook_token.clone()),
    ) {
        (Some(secret), _) => WebhookAuth::Hmac(secret.into_bytes()),
        (None, Some(token)) => WebhookAuth::Bearer(token),
        (None, None) => WebhookAuth::None,
    };
    let mut targets: Vec<Target> = args
        .alertmanagers
        .iter()
        .cloned()
        .map(Target::Alertmanager)
        .collect();
    targets.extend(args.webhooks.iter().map(|url| {
        Target::Webhook(Webhook {
            url: url.clone(),
            auth: auth.clone(),
        })
    }));
    Ok(targets)
}

/// How many files can be followed at once: raises the soft open-file
/// limit so `wanted` files fit next to the descriptors the rest of
/// faultline needs; when the hard limit does not allow it, says so on
/// `errors` and gives what fits.
async fn open_file_room(wanted: usize, errors: &mpsc::Sender<String>) -> usize {
    /// Descriptors kept for sockets, the state directory and the like.
    const OTHERS: u64 = 256;
    let needed = (wanted as u64).saturating_add(OTHERS);
    let limit = match rlimit::increase_nofile_limit(needed) {
        Ok(limit) => limit,
        Err(err) => {
            let _ = errors
                .send(format!("cannot raise the open-file limit: {err}"))
                .await;
            return wanted;
        }
    };
    if limit >= needed {
        return wanted;
    }
    let room = usize::try_from(limit.saturating_sub(OTHERS))
        .unwrap_or(usize::MAX)
        .max(1);
    let _ = errors
        .send(format!(
            "the open-file limit is {limit}: following at most {room} files, \
             not {wanted} (--max-files); raise the limit (ulimit -n) to follow more"
        ))
        .await;
    room
}

/// Prints a warning about faultline's own state, if there is one.
fn warn(warning: Option<String>) {
    if let Some(warning) = warning {
        eprintln!("faultline: {warning}");
    }
}

#[cfg(test)]
mod tests;
