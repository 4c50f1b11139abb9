//! A deterministic mixed Kubernetes node log corpus for the benches: CRI pod
//! lines, CloudNativePG JSON records, Loki/promtail logfmt, kubelet klog and
//! kernel lines, with near-misses in the healthy traffic and about one
//! failure line in 10,000.

/// A tiny deterministic generator (xorshift64*): benches must see the same
/// bytes on every run and machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const HEALTHY: &[&str] = &[
    r#"2026-02-16T03:04:05.123456789Z stdout F 10.244.1.7 - - [16/Feb/2026:03:04:05 +0000] "GET /api/v1/items?page={n} HTTP/1.1" 200 {n} "-" "Mozilla/5.0" {n} 0.004 [default-web-8080] [] 10.244.2.9:8080 {n} 0.004 200 {hex}"#,
    r#"2026-02-16T03:04:05.223456789Z stderr F {"level":"info","ts":"2026-02-16T03:04:05.223456789Z","logger":"postgres","msg":"record","logging_pod":"vitals-db-production-cnpg-v1-1","record":{"log_time":"2026-02-16 03:04:05.223 UTC","process_id":"{n}","session_id":"65cf{hex}","error_severity":"LOG","sql_state_code":"00000","message":"checkpoint complete: wrote {n} buffers (0.1%); 0 WAL file(s) added, 0 removed, 1 recycled","backend_type":"checkpointer"}}"#,
    r#"2026-02-16T03:04:05.323456789Z stderr F {"level":"error","ts":"2026-02-16T03:04:05.323456789Z","logger":"postgres","msg":"record","logging_pod":"linkding-db-production-cnpg-v1-1","record":{"log_time":"2026-02-16 03:04:05.323 UTC","user_name":"app","database_name":"app","process_id":"{n}","error_severity":"ERROR","sql_state_code":"25006","message":"cannot execute INSERT in a read-only transaction","backend_type":"client backend"}}"#,
    r#"2026-02-16T03:04:05.423456789Z stderr F level=info ts=2026-02-16T03:04:05.423456789Z caller=flush.go:{n} component=ingester msg="flushing stream" user=fake fp={hex} immediate=false num_chunks=1 labels="{app=\"web\", namespace=\"default\"}""#,
    r#"2026-02-16T03:04:05.523456789Z stderr F level=debug ts=2026-02-16T03:04:05.523456789Z caller=logging.go:{n} msg="POST /loki/api/v1/push (204) 1.{n}ms""#,
    r#"2026-02-16T03:04:05.623456789Z stderr F level=debug ts=2026-02-16T03:04:05.623456789Z caller=client.go:{n} component=client host=loki:3100 msg="batch sent" status=204 entries={n}"#,
    r#"Feb 16 03:04:05 talos-519-vmy kubelet[1234]: I0216 03:04:05.723456    1234 operation_generator.go:{n}] "MountVolume.SetUp succeeded for volume \"kube-api-access-{hex}\" (UniqueName: \"kubernetes.io/projected/{hex}\") pod=\"default/web-{hex}\"""#,
    r#"Feb 16 03:04:05 talos-519-vmy kubelet[1234]: I0216 03:04:05.823456    1234 kubelet.go:{n}] "SyncLoop (PLEG): event for pod" pod="default/web-{hex}" event={"ID":"{hex}","Type":"ContainerStarted"}"#,
    r#"Feb 16 03:04:05 talos-519-vmy kernel: [{n}.123456] EXT4-fs (sdc): mounted filesystem {hex} r/w with ordered data mode. Quota mode: none."#,
    r#"Feb 16 03:04:05 talos-519-vmy kernel: [{n}.223456] IPv4: martian source 10.244.{n}.1 from 10.244.1.{n}, on dev eth0"#,
    r#"2026-02-16T03:04:06.023456789Z stdout F {"level":"info","ts":1708052646.0234,"caller":"server/handler.go:{n}","msg":"request handled","method":"GET","path":"/healthz","status":200,"duration_ms":{n}}"#,
    r#"2026-02-16T03:04:06.123456789Z stdout F INFO:     10.244.3.{n}:51234 - "GET /ping HTTP/1.1" 200 OK"#,
];

const FAILURES: &[&str] = &[
    r#"2026-02-19T03:04:05.123456789Z stderr F {"level":"info","ts":"2026-02-19T03:04:05.123456789Z","logger":"postgres","msg":"record","logging_pod":"vitals-db-production-cnpg-v1-2","record":{"log_time":"2026-02-19 03:04:05.123 UTC","process_id":"{n}","error_severity":"FATAL","sql_state_code":"58030","message":"could not open file \"pg_wal/00000001000000000000000{n}\": Read-only file system","backend_type":"startup"}}"#,
    r#"Feb 19 03:04:05 talos-519-vmy kernel: [{n}.123456] EXT4-fs (sdb): Remounting filesystem read-only"#,
    r#"Feb 19 03:04:05 talos-519-vmy kernel: [{n}.223456] I/O error, dev sdb, sector {n} op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0"#,
    r#"2026-02-25T10:00:00.123456789Z stderr F level=error ts=2026-02-25T10:00:00.123456789Z caller=flush.go:{n} component=ingester msg="failed to flush" err="write /var/loki/wal/0000{n}: read-only file system""#,
    r#"Feb 25 10:00:00 talos-519-vmy kubelet[1234]: I0225 10:00:00.123456    1234 prober.go:{n}] "Probe failed" probeType="Liveness" pod="immich/immich-machine-learning-7d9f-{hex}" podUID="{hex}" containerName="immich-machine-learning" probeResult="failure" output="Get \"http://10.244.1.5:3003/ping\": dial tcp 10.244.1.5:3003: connect: connection refused""#,
];

fn fill(template: &str, rng: &mut Rng, out: &mut Vec<u8>) {
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("{n}") {
            out.extend_from_slice(rng.below(100_000).to_string().as_bytes());
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("{hex}") {
            out.extend_from_slice(format!("{:08x}", rng.next_u64() as u32).as_bytes());
            rest = tail;
        } else {
            out.push(b'{');
            rest = &after[1..];
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out.push(b'\n');
}

/// About `size` bytes of corpus; one line in `failure_every` is a failure.
pub fn generate(size: usize, failure_every: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(size + 1024);
    while out.len() < size {
        let failure = rng.below(failure_every) == 0;
        let template = if failure {
            rng.pick(FAILURES)
        } else {
            rng.pick(HEALTHY)
        };
        fill(template, &mut rng, &mut out);
    }
    out
}

/// The first `n` (at most 400) lines of `patterns-400.txt`: the 40 patterns
/// of the speed kit, then synthetic signatures in the styles real components
/// log in (distinct components, verbs, objects and errors).
pub fn patterns(n: usize) -> Vec<String> {
    include_str!("../patterns-400.txt")
        .lines()
        .take(n)
        .map(str::to_string)
        .collect()
}
