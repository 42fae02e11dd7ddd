//! A shard's tasks: the mesh's receive loops, the server-port receive loops, the RTSP accept
//! loop, the ingests it owns (synthetic, pull, raw RTP), the metrics publisher and endpoint,
//! and shutdown. Each task only moves bytes into the shard and carries out what it decides.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use glommio::net::TcpListener;
use glommio::{spawn_local, timer};

use crate::egress::UdpEgress;
use crate::error::{RelayError, ShardError};
use crate::outbox::ConnOut;
use crate::shard::{Media, Shard, ShardMsg, Shared, TaskQueues, JOIN_TIMEOUT};
use crate::udp::ServerPorts;

/// How often a shard looks at the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

/// Runs one shard until shutdown: joins the mesh, binds, tells `ready`, serves.
pub(crate) async fn run(
    shared: Shared,
    mesh: MeshBuilder<ShardMsg, Full>,
    ready: std::sync::mpsc::Sender<Result<(), RelayError>>,
) {
    let shards = mesh.nr_peers();
    let (senders, receivers): (Senders<ShardMsg>, Receivers<ShardMsg>) = match mesh.join().await {
        Ok(joined) => joined,
        Err(e) => {
            let _ = ready.send(Err(RelayError::Mesh(e.into())));
            return;
        }
    };
    let id = senders.peer_id();
    let fail = |source: ShardError| {
        let _ = ready.send(Err(RelayError::Shard { shard: id, source }));
    };
    let listener = match TcpListener::bind(shared.listen) {
        Ok(l) => l,
        Err(e) => {
            fail(ShardError::Listen { addr: shared.listen, source: e.into() });
            return;
        }
    };
    let udp = match ServerPorts::bind(shared.listen.ip()) {
        Ok(u) => u,
        Err(source) => {
            fail(ShardError::ServerPorts { ip: shared.listen.ip(), source });
            return;
        }
    };
    let egress = UdpEgress::new(&udp);
    // RTSP connections' request handling runs in a task queue of its own, so that a burst of
    // connections or requests is preempted (the executor's preempt timer) for the media tasks
    // (writers, ingests) in the shard's main queue, rather than run to the end first.
    let queues = TaskQueues {
        media: glommio::executor().current_task_queue(),
        control: glommio::executor().create_task_queue(
            glommio::Shares::default(),
            glommio::Latency::NotImportant,
            "rtsp-control",
        ),
    };
    let shard = Rc::new(Shard {
        id,
        shards,
        shared: shared.clone(),
        mesh: senders,
        hubs: RefCell::default(),
        fanouts: RefCell::default(),
        joins: RefCell::default(),
        udp,
        egress,
        actions: RefCell::default(),
        targets: RefCell::default(),
        udp_sources: RefCell::default(),
        rtcp_sources: RefCell::default(),
        rtcp_ingest: RefCell::default(),
        forwards: RefCell::default(),
        next_id: Cell::new(0),
        conns: RefCell::default(),
        tunnels: RefCell::default(),
        obs: crate::metrics::ShardObs::new(shards),
        groups: RefCell::default(),
        mcast: crate::egress::MulticastEgress::default(),
        queues,
        gate: crate::gate::Gate::new(shared.access.0.clone(), shared.access.1.clone()),
    });
    tracing::info!(
        shard = id,
        of = shard.shards,
        rtp_port = shard.udp.port,
        gso = shard.egress.gso(),
        "shard up"
    );

    let mut receivers = receivers;
    for (from, rx) in receivers.streams() {
        let shard = shard.clone();
        spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                handle_msg(&shard, from, msg);
                // A channel with messages waiting does not yield (ARCHITECTURE.md, Connections).
                glommio::yield_if_needed().await;
            }
        })
        .detach();
    }
    spawn_local(udp_rtp_loop(shard.clone())).detach();
    spawn_local(watch_stalls(shard.clone())).detach();
    spawn_local(udp_rtcp_loop(shard.clone())).detach();
    if shared.config.metrics.is_some() {
        spawn_local(publish_metrics(shard.clone())).detach();
    }
    if let (0, Some(edges)) = (id, &shared.edges) {
        spawn_local(crate::redirect::watch(edges.clone())).detach();
    }
    if let (0, Some(addr)) = (id, shared.config.metrics) {
        match crate::http::bind(addr) {
            Ok(listener) => {
                tracing::info!(%addr, "metrics listening");
                let scrape = crate::metrics::Scrape {
                    board: shared.board.clone(),
                    limits: shared.limits.clone(),
                    token: shared.metrics_token.clone(),
                };
                spawn_local(crate::http::serve(Rc::new(scrape), listener)).detach();
            }
            Err(e) => {
                fail(e);
                return;
            }
        }
    }
    if id == 0 {
        for path in &shared.config.synthetic {
            if let Err(source) = crate::synthetic::start(&shard, path) {
                fail(ShardError::Synthetic { path: path.clone(), source });
                return;
            }
        }
    }
    crate::pull::start_all(&shard);
    // Raw RTP input `i` belongs to shard `i % shards`.
    for (i, input) in shared.config.rtp.iter().enumerate() {
        if i % shards != id {
            continue;
        }
        if let Err(source) = crate::rtp_ingest::start(&shard, input) {
            fail(ShardError::RtpInput {
                path: input.path.clone(),
                listen: input.listen,
                source: Box::new(source),
            });
            return;
        }
    }
    let accept = spawn_local(accept_loop(shard.clone(), listener, Served::Rtsp));
    let tunnel_accept = match shared.http_tunnel_listen.map(TcpListener::bind) {
        None => None,
        Some(Ok(l)) => Some(spawn_local(accept_loop(shard.clone(), l, Served::Rtsp))),
        Some(Err(e)) => {
            let addr = shared.http_tunnel_listen.unwrap_or(shared.listen);
            fail(ShardError::Listen { addr, source: e.into() });
            return;
        }
    };
    let rtsps_accept = match &shared.rtsps {
        None => None,
        Some((addr, tls)) => match TcpListener::bind(addr) {
            Ok(l) => Some(spawn_local(accept_loop(shard.clone(), l, Served::Rtsps(tls.clone())))),
            Err(e) => {
                fail(ShardError::Listen { addr: *addr, source: e.into() });
                return;
            }
        },
    };
    let rtmps_accept = match &shared.rtmps {
        None => None,
        Some((addr, tls)) => match TcpListener::bind(addr) {
            Ok(l) => Some(spawn_local(accept_loop(shard.clone(), l, Served::Rtmps(tls.clone())))),
            Err(e) => {
                fail(ShardError::Listen { addr: *addr, source: e.into() });
                return;
            }
        },
    };
    let rtmp_accept = match shared.rtmp_listen.map(TcpListener::bind) {
        None => None,
        Some(Ok(l)) => Some(spawn_local(accept_loop(shard.clone(), l, Served::Rtmp))),
        Some(Err(e)) => {
            let addr = shared.rtmp_listen.unwrap_or(shared.listen);
            fail(ShardError::Listen { addr, source: e.into() });
            return;
        }
    };
    // RTMPT sessions span several HTTP connections: shard 0 alone listens, so every
    // connection of a session finds it in the one table.
    let rtmpt_accept = match shared.rtmpt_listen.filter(|_| shard.id == 0).map(TcpListener::bind) {
        None => None,
        Some(Ok(l)) => {
            let served = Served::Rtmpt(Rc::new(crate::rtmpt::Tunnels::default()));
            Some(spawn_local(accept_loop(shard.clone(), l, served)))
        }
        Some(Err(e)) => {
            let addr = shared.rtmpt_listen.unwrap_or(shared.listen);
            fail(ShardError::Listen { addr, source: e.into() });
            return;
        }
    };
    let _ = ready.send(Ok(()));

    while !shared.shutdown.load(Ordering::Relaxed) {
        timer::sleep(SHUTDOWN_POLL).await;
    }
    accept.cancel().await;
    let extra = [rtmp_accept, tunnel_accept, rtsps_accept, rtmpt_accept, rtmps_accept];
    for a in extra.into_iter().flatten() {
        a.cancel().await;
    }
    let readers: Vec<(u64, u64)> = shard.with_fanouts(|fanouts| {
        fanouts.iter().flat_map(|(s, f)| f.readers().iter().map(|r| (*s, r.id))).collect()
    });
    for (stream, reader) in readers {
        shard.send_bye(stream, reader, None, "relay shutting down");
    }
    let conns: Vec<Rc<ConnOut>> = shard.conns.borrow().values().cloned().collect();
    tracing::info!(shard = id, connections = conns.len(), "shutting down");
    for c in &conns {
        c.close();
    }
    // Let writers flush and connections close.
    timer::sleep(Duration::from_millis(100)).await;
}

/// What a listener's connections speak.
#[derive(Debug, Clone)]
enum Served {
    /// RTSP, or RTSP over HTTP (`conn.rs` tells them apart).
    Rtsp,
    /// The same over TLS, after a handshake with this config.
    Rtsps(Arc<manifold_tls::rustls::ServerConfig>),
    /// RTMP publishers.
    Rtmp,
    /// RTMP publishers over TLS, after a handshake with this config.
    Rtmps(Arc<manifold_tls::rustls::ServerConfig>),
    /// RTMPT publishers' HTTP connections, and the table of their sessions.
    Rtmpt(Rc<crate::rtmpt::Tunnels>),
}

impl Served {
    /// For logs.
    fn name(&self) -> &'static str {
        match self {
            Served::Rtsp => "rtsp",
            Served::Rtsps(_) => "rtsps",
            Served::Rtmp => "rtmp",
            Served::Rtmps(_) => "rtmps",
            Served::Rtmpt(_) => "rtmpt",
        }
    }
}

/// Accepts connections within the connection limits, each served by its own task in the
/// request-handling queue. Out of descriptors (`EMFILE`, `ENFILE`) it backs off and retries;
/// refusals and accept failures are logged at most once a second, with how many were not.
async fn accept_loop(shard: Rc<Shard>, listener: TcpListener, served: Served) {
    let mut log = crate::ratelog::RateLimitedLog::default();
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let Ok(peer) = stream.peer_addr() else { continue };
                let permit = match shard.shared.limits.admit_connection(peer.ip()) {
                    Ok(p) => p,
                    Err(why) => {
                        if let Some(suppressed) = log.allow(Instant::now()) {
                            let bounds = shard.shared.limits.bounds();
                            tracing::warn!(%peer, shard = shard.id, served = served.name(), ?why,
                                max_connections = bounds.connections,
                                max_connections_per_ip = bounds.connections_per_ip, suppressed,
                                "connection refused: connection limit");
                        }
                        drop(stream);
                        continue;
                    }
                };
                let conn_shard = shard.clone();
                let conn_served = served.clone();
                let task = glommio::spawn_local_into(
                    async move {
                        match conn_served {
                            Served::Rtsp => crate::conn::run(conn_shard, stream, None).await,
                            Served::Rtsps(tls) => {
                                crate::conn::run(conn_shard, stream, Some(tls)).await
                            }
                            Served::Rtmp => crate::rtmp_ingest::serve(conn_shard, stream).await,
                            Served::Rtmps(tls) => {
                                crate::rtmp_ingest::serve_tls(conn_shard, stream, tls).await
                            }
                            Served::Rtmpt(tunnels) => {
                                crate::rtmpt::serve(conn_shard, stream, tunnels).await
                            }
                        }
                        drop(permit);
                    },
                    shard.queues.control,
                );
                match task {
                    Ok(task) => {
                        task.detach();
                    }
                    Err(e) => tracing::warn!(%peer, error = %e, "connection not served"),
                }
                // Let the new connection (and every task already waiting, media writers among
                // them) run before the next accept: a burst of connections must not hold up
                // the shard's readers for the time it takes to set all of them up.
                futures_lite::future::yield_now().await;
            }
            Err(e) => {
                let e = std::io::Error::from(e);
                let out_of_files = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                if let Some(suppressed) = log.allow(Instant::now()) {
                    tracing::warn!(error = %e, shard = shard.id, served = served.name(), out_of_files, suppressed,
                        "accept failed; backing off");
                }
                let pause = if out_of_files { 100 } else { 10 };
                timer::sleep(Duration::from_millis(pause)).await;
            }
        }
    }
}

/// Closes readers that read nothing for the stall limit, checking a few times per limit (the
/// plane keeps the time; this task only asks).
async fn watch_stalls(shard: Rc<Shard>) {
    let period = (shard.config().reader_stall() / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(1));
    loop {
        timer::sleep(period).await;
        shard.close_stalled(Instant::now());
    }
}

/// Publishes this shard's metrics snapshot every [`crate::metrics::PUBLISH_PERIOD`].
async fn publish_metrics(shard: Rc<Shard>) {
    loop {
        shard.shared.board.publish(shard.snapshot());
        timer::sleep(crate::metrics::PUBLISH_PERIOD).await;
    }
}

/// Answers shard `to`'s subscription for its reader with a snapshot of the GOP. The snapshot
/// is taken and queued in one step (retrying while the queue is full), so the live packets
/// that follow it in the queue continue it without a gap; and the receive loops never wait
/// on a queue, so two shards flooding each other cannot deadlock.
async fn answer_subscribe(shard: Rc<Shard>, stream: u64, to: usize, reader: u64, gop: bool) {
    let give_up = Instant::now() + JOIN_TIMEOUT;
    loop {
        let packets =
            shard.hubs.borrow().get(&stream).map(|h| if gop { h.snapshot() } else { Vec::new() });
        let found = packets.is_some();
        match shard.mesh.try_send_to(to, ShardMsg::Snapshot { stream, reader, packets }) {
            Ok(()) => {
                if found {
                    if let Some(h) = shard.hubs.borrow_mut().get_mut(&stream) {
                        h.set_subscribed(to, true);
                    }
                }
                return;
            }
            Err(_) if Instant::now() < give_up => timer::sleep(Duration::from_millis(1)).await,
            Err(_) => return,
        }
    }
}

fn handle_msg(shard: &Rc<Shard>, from: usize, msg: ShardMsg) {
    match msg {
        ShardMsg::Packet { stream, packet } => {
            shard.obs.count_mesh_received(from);
            shard.deliver(Instant::now(), stream, &packet);
        }
        ShardMsg::Subscribe { stream, from: to, reader, gop } => {
            spawn_local(answer_subscribe(shard.clone(), stream, to, reader, gop)).detach();
        }
        ShardMsg::Snapshot { stream, reader, packets } => {
            let join = shard.joins.borrow_mut().remove(&reader);
            match (join, packets) {
                (Some(join), Some(packets)) if join.stream == stream => {
                    if let Some(mut reader) = join.reader.borrow_mut().take() {
                        reader.preload(Instant::now(), &packets);
                        shard.add_reader(stream, reader);
                    }
                    join.outcome.set(Some(true));
                    join.notify.notify();
                }
                (Some(join), _) => {
                    join.outcome.set(Some(false));
                    join.notify.notify();
                }
                // The PLAY gave up waiting; if this shard has no readers of the stream, tell
                // the owner so it stops sending.
                (None, _) => {
                    if !shard.has_fanout(stream) {
                        shard.send_later(from, ShardMsg::Unsubscribe { stream, from: shard.id });
                    }
                }
            }
        }
        ShardMsg::Unsubscribe { stream, from } => {
            if let Some(hub) = shard.hubs.borrow_mut().get_mut(&stream) {
                hub.set_subscribed(from, false);
            }
        }
        ShardMsg::Ingest { stream, packet } => {
            let media = if packet.is_rtcp() { Media::Rtcp } else { Media::Rtp };
            shard.ingest(Instant::now(), stream, packet.track(), packet.rtp(), media);
        }
        ShardMsg::Republished { stream, peer } => {
            if shard.upstream_restarted(stream) {
                shard.obs.set_upstream(
                    stream,
                    crate::metrics::Upstream { kind: "publisher", peer: Some(peer), conn: None },
                );
                tracing::info!(%peer, stream, publisher_shard = from, shard = shard.id,
                    side = "upstream",
                    "republished on another shard: readers continue the same stream");
            }
        }
        ShardMsg::PublisherGone { stream, end } => {
            if shard.has_hub(stream) {
                if end {
                    shard.end_stream(stream);
                } else {
                    crate::republish::publisher_gone(shard, stream);
                }
            }
        }
        ShardMsg::Ended { stream } => shard.close_fanout(stream),
        ShardMsg::TunnelInput { conn, bytes } => {
            if !shard.tunnel_input(conn, &bytes) {
                tracing::debug!(conn, "tunnel input for a GET half that is gone or full");
            }
        }
        ShardMsg::Evict { stream } => shard.evict(stream, shard.id),
        ShardMsg::Multicast { stream, group, delta } => {
            shard.multicast_readers(stream, shard.id, group, delta);
        }
    }
}

/// Publishers' RTP on the server port: into their stream's hub (or its owner).
async fn udp_rtp_loop(shard: Rc<Shard>) {
    let mut buf = vec![0u8; 65536];
    loop {
        // A receive that finds a datagram waiting does not yield: under a flood (or a shard
        // too slow for its publisher) this loop would keep the shard to itself.
        glommio::yield_if_needed().await;
        match shard.udp.rtp.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let route = shard.udp_sources.borrow().get(&from).copied();
                if let Some((stream, track)) = route {
                    shard.ingest_publisher(Instant::now(), stream, track, &buf[..n], Media::Rtp);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, shard = shard.id, "RTP server port receive failed");
                timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// RTCP on the server port: publishers' sender reports go to their hub; readers' receiver
/// reports count as liveness and become the reader's loss and jitter.
async fn udp_rtcp_loop(shard: Rc<Shard>) {
    let mut buf = vec![0u8; 65536];
    loop {
        // As above: a waiting datagram does not yield.
        glommio::yield_if_needed().await;
        match shard.udp.rtcp.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let now = Instant::now();
                let route = shard.rtcp_ingest.borrow().get(&from).copied();
                match route {
                    Some((stream, track)) => {
                        shard.ingest_publisher(now, stream, track, &buf[..n], Media::Rtcp);
                    }
                    None => {
                        shard.reader_rtcp(now, from, &buf[..n]);
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, shard = shard.id, "RTCP server port receive failed");
                timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
