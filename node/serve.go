package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/internal/certs"
	"github.com/holocron-run/holocron/internal/gctune"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
	"github.com/holocron-run/holocron/storage"
)

// Run runs one node of types (cfg from ParseConfig), logging JSON lines to
// logOut, until ctx is cancelled; then it shuts down gracefully, in this
// order: /readyz answers draining, the cluster hands its partitions over,
// the sockets are closed (1001), each object's queued events run and
// their writes become durable, the listeners close, the store closes.
// An error from the operator's input (a flag, an unusable data
// directory) matches IsUsageError.
func Run(ctx context.Context, cfg Config, types Types, logOut io.Writer) error {
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))
	// SIGHUP reloads the cluster's secrets, and never stops the node: it is
	// caught from the start, before the node answers /readyz.
	hupCtx, stopHUP := context.WithCancel(ctx)
	defer stopHUP()
	hup := make(chan os.Signal, 1)
	watchSIGHUP(hupCtx, hup)
	if err := checkDataDir(cfg.DataDir); err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return usageError{fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)}
	}
	defer ln.Close()
	if cfg.GCHeadroomMiB > 0 && !cfg.GOGCSet {
		gcCtx, stopGC := context.WithCancel(ctx)
		defer stopGC()
		go gctune.Run(gcCtx, uint64(cfg.GCHeadroomMiB)<<20, time.Second)
	}

	var shutdownNode func(context.Context)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(
		// The defaults, plus how long goroutines wait for a CPU once
		// runnable: the first sign of a node short of cores.
		collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler),
	), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	storeMetrics := newStoreMetrics(reg)
	var (
		rtp atomic.Pointer[runtime.Runtime]
		// failure is why the node's storage failed, nil while it works;
		// failed is closed when it is set. The node then fail-stops: see
		// the end of serve.
		failure atomic.Pointer[error]
		failed  = make(chan struct{})
	)
	onFailure := func(err error) {
		// Called once, on the goroutine whose write failed, before any
		// commit hears of it: /readyz says so at once, and every socket
		// is closed 1012 (clients reconnect at once, elsewhere) before an
		// object whose commit failed could close its own with 1011.
		failure.Store(&err)
		if rt := rtp.Load(); rt != nil {
			rt.Evict(func(runtime.ID) bool { return true }, protocol.CloseMoved, "node failed")
		}
		close(failed)
	}
	store, err := storage.OpenPebble(filepath.Join(cfg.DataDir, "pebble"), storage.PebbleOptions{Logger: log, Metrics: storeMetrics, OnFailure: onFailure})
	if err != nil {
		return usageError{fmt.Errorf("data directory %s unusable: %w", cfg.DataDir, err)}
	}
	defer func() {
		if failure.Load() != nil {
			return // not after a failure: see the end of serve
		}
		if err := store.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()

	var (
		objStore storage.Store = store
		node     *cluster.Node
		director runtime.Director
		peer     *peerListener
	)
	if cfg.clustered() {
		peer, err = listenPeer(cfg, log)
		if err != nil {
			return usageError{err}
		}
		defer peer.ln.Close()
		node, err = cluster.Start(cluster.Config{
			NodeName:          cfg.NodeName,
			BindAddr:          cfg.Bind,
			AdvertiseAddr:     cfg.Advertise,
			HTTPAddr:          cfg.AdvertiseHTTP,
			PeerAddr:          cfg.AdvertisePeer,
			Peer:              peer.link,
			GossipKeys:        peer.gossipKeys,
			Join:              cfg.joinList(),
			Bootstrap:         cfg.Bootstrap,
			Partitions:        cfg.Partitions,
			Replication:       cfg.Replication,
			DeadMemberTimeout: cfg.DeadMemberTimeout,
			TickInterval:      cfg.RaftTick,
			RaftLogKeep:       cfg.RaftLogKeep,
			Store:             store,
			Logger:            log,
			Metrics:           reg,
			OnServing: func(part int, serving bool) {
				// Either way, no instance built under another leader may be
				// reused: drop them; on a loss, clients reconnect elsewhere.
				if rt := rtp.Load(); rt != nil {
					rt.Evict(func(id runtime.ID) bool { return node.PartitionOf(id) == part }, protocol.CloseMoved, protocol.ReasonMoved)
				}
			},
		})
		if err != nil {
			return usageError{fmt.Errorf("join cluster: %w", err)}
		}
		objStore, director = node.Store(), node
		nodeUp := true
		defer func() {
			if nodeUp && failure.Load() == nil {
				node.Close()
			}
		}()
		shutdownNode = func(ctx context.Context) {
			nodeUp = false
			if err := node.Shutdown(ctx); err != nil {
				log.Error("leave cluster", "err", err)
			}
		}
	}

	classes := runtime.NewRegistry()
	if types.Register != nil {
		if err := types.Register(classes); err != nil {
			return usageError{err}
		}
	}
	rt, err := runtime.New(runtime.Options{
		Store:       objStore,
		Registry:    classes,
		Logger:      log,
		Metrics:     reg,
		IdleTimeout: cfg.IdleTimeout,
		Director:    director,

		MaxSocketsPerIP:        cfg.MaxSocketsIP,
		MaxSocketsPerPrincipal: cfg.MaxSocketsUser,
		SocketRate:             cfg.RateLimit,
		SocketBurst:            cfg.RateBurst,
		RateLimitedReply:       protocol.RateLimitedFrame(),
	})
	if err != nil {
		return fmt.Errorf("start runtime: %w", err)
	}
	rtp.Store(rt)
	if node != nil {
		node.SetRuntime(rt)
	}

	var draining atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		protocol.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if f := failure.Load(); f != nil {
			protocol.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failed", "error": (*f).Error()})
			return
		}
		if draining.Load() {
			protocol.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		protocol.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	admin := &adminAPI{token: cfg.AdminToken, nodeName: cfg.NodeName, rt: rt, node: node, origins: http.NewCrossOriginProtection()}
	if peer != nil {
		admin.peer = peer.link
	}
	if node != nil {
		mux.Handle("GET /admin/cluster", admin.protect(node.AdminHandler()))
		mux.Handle("GET /admin/cluster/locate/{class}/{name}", admin.protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ns, err := rt.Namespace(r.PathValue("class"))
			if err != nil {
				protocol.WriteHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "unknown object class %q", r.PathValue("class")))
				return
			}
			loc, err := node.Locate(r.Context(), ns.IDFromName(r.PathValue("name")))
			if err != nil {
				protocol.WriteHTTPError(w, http.StatusServiceUnavailable, protocol.Errorf(protocol.CodeUnavailable, "%v", err))
				return
			}
			protocol.WriteJSON(w, http.StatusOK, loc)
		})))
	} else {
		mux.Handle("GET /admin/cluster", admin.protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			protocol.WriteJSON(w, http.StatusOK, map[string]string{"mode": "single-node"})
		})))
	}
	mux.Handle("POST /admin/backup", admin.protect(serveBackup(store, cfg.DataDir, log)))
	objAdmin := &objectsAdmin{adminAPI: admin, store: store}
	mux.Handle("GET /admin/objects", admin.protect(http.HandlerFunc(objAdmin.serveList)))
	objAdmin.routes(mux)
	mux.Handle("GET /admin/overview", admin.protect(http.HandlerFunc(admin.serveOverview)))
	// Go's profiler, behind the admin token: how an operator (or
	// bench/run.sh) sees where a node spends its time.
	mux.Handle("GET /debug/pprof/", admin.protect(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/profile", admin.protect(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/trace", admin.protect(http.HandlerFunc(pprof.Trace)))
	mux.Handle("GET /debug/pprof/symbol", admin.protect(http.HandlerFunc(pprof.Symbol)))
	if types.Web != nil {
		for _, p := range types.WebPaths {
			mux.Handle("GET "+p, types.Web)
		}
	}
	objects := authenticate([]byte(cfg.AuthSecret), gateway.New(rt, types.Routes))
	mux.Handle("/", cfg.origins.guard(objects))

	// Headers are bounded in size and time here; bodies by the runtime
	// (runtime.Options.MaxRequestBody, RequestBodyTimeout), before the
	// object's event. No ReadTimeout: it would cut WebSockets.
	// A shutdown stops waiting for request bodies still on their way.
	bodies, abortBodies := context.WithCancel(context.Background())
	defer abortBodies()
	srv := &http.Server{Handler: runtime.AbortBodyReads(bodies, refuseWhenFailed(mux, &failure)), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	srv.RegisterOnShutdown(abortBodies)
	serveErr := make(chan error, 2)
	// What SIGHUP reloads: the client port's certificate, the peer link's
	// certificates and the gossip keys (each is also reloaded when its
	// files change).
	var reloads []func()
	if cfg.TLSCert != "" {
		kp, err := certs.LoadKeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return usageError{fmt.Errorf("-tls-cert, -tls-key: %w", err)}
		}
		srv.TLSConfig = kp.ServerConfig()
		ln = tls.NewListener(ln, srv.TLSConfig)
		go kp.Watch(hupCtx, secretsCheckInterval, log)
		reloads = append(reloads, func() {
			if err := kp.Reload(); err != nil {
				log.Error("SIGHUP: the client port's TLS certificate cannot be loaded; keeping the one in use", "err", err)
				return
			}
			log.Info("SIGHUP: the client port's TLS certificate reloaded", "file", cfg.TLSCert)
		})
	}
	go func() { serveErr <- srv.Serve(ln) }()
	var peerSrv *http.Server
	if peer != nil {
		// The peer listener: what other nodes send, and nothing else.
		// Object requests here were forwarded by a peer; the admin routes
		// are those the fan-out and onOwner reach on other nodes.
		pmux := http.NewServeMux()
		pmux.Handle("POST "+cluster.RaftPath, node.RaftHandler())
		pmux.Handle("POST "+cluster.HoldPath, node.HoldHandler())
		pmux.Handle("GET "+cluster.PingPath, cluster.PingHandler())
		// Calls between objects: only peers may claim to be an object.
		pmux.Handle(runtime.CallPath, rt.CallHandler())
		edges := node.EdgeHandler(objects)
		pmux.Handle("GET "+cluster.EdgePath, edges)
		pmux.Handle("POST "+cluster.EdgeInPath, edges)
		objAdmin.routes(pmux)
		pmux.Handle("/", objects)
		peerSrv = peer.link.Server(runtime.AbortBodyReads(bodies, refuseWhenFailed(pmux, &failure)), log)
		go func() { serveErr <- peer.link.Serve(peerSrv, peer.ln) }()
		go peer.watch(hupCtx, node, log)
		reloads = append(reloads, func() { peer.reload(node, log) })
	}
	go func() {
		for {
			select {
			case <-hupCtx.Done():
				return
			case <-hup:
				if len(reloads) == 0 {
					log.Info("SIGHUP: nothing to reload (no TLS certificate, no cluster secrets)")
				}
				for _, reload := range reloads {
					reload()
				}
			}
		}
	}()
	mode := "single-node"
	if node != nil {
		mode = "cluster"
		log.Info("cluster member", "node", cfg.NodeName, "gossip", cfg.Bind, "advertise_http", cfg.AdvertiseHTTP,
			"peer", cfg.PeerAddr, "advertise_peer", cfg.AdvertisePeer, "secured", !cfg.Insecure,
			"join", cfg.joinList(), "bootstrap", cfg.Bootstrap, "partitions", cfg.Partitions, "replication", cfg.Replication)
	}
	auth := "open dev mode: no -auth-secret, players name themselves"
	if cfg.AuthSecret != "" {
		auth = "player tokens (HS256) required"
	}
	adminAuth := "loopback only (no -admin-token)"
	if cfg.AdminToken != "" {
		adminAuth = "admin token required"
	}
	log.Info("holocron serving", "version", Version, "http", ln.Addr().String(), "data", cfg.DataDir,
		"mode", mode, "auth", auth, "admin", adminAuth)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-failed:
		// Fail-stop, as etcd does on a failed WAL write: a store that
		// failed refuses every commit for good (storage.PebbleOptions.
		// OnFailure), so the node exits for its supervisor to restart it
		// on the same directory, whose WAL holds every acknowledged write;
		// in a cluster the other voters elect new leaders meanwhile.
		// Nothing is saved by closing the store, node or runtime, and
		// Pebble after a failed write may block in Close: skip them all.
		cause := *failure.Load()
		log.Warn("fail-stop: storage failed; refusing all work, closing sockets 1012, exiting 1", "err", cause)
		rt.Evict(func(runtime.ID) bool { return true }, protocol.CloseMoved, "node failed")
		// The runtime gives each peer 2s to answer a close frame.
		for deadline := time.Now().Add(failStopGrace); rt.Stats().Sockets > 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		return fmt.Errorf("storage failed: %w", cause)
	}
	log.Info("shutting down")
	draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if shutdownNode != nil {
		// Hand partitions to other nodes first; their sockets close with
		// 1012 "moved" and reconnect elsewhere.
		shutdownNode(sctx)
	}
	// Stop taking requests; WebSockets are hijacked and closed by the runtime.
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("http shutdown", "err", err)
	}
	if peerSrv != nil {
		if err := peerSrv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("peer listener shutdown", "err", err)
		}
		peer.link.Close()
	}
	if err := rt.Close(sctx); err != nil {
		log.Error("runtime shutdown", "err", err)
	}
	if f := failure.Load(); f != nil {
		return fmt.Errorf("storage failed during shutdown: %w", *f)
	}
	log.Info("stopped")
	return nil
}

// failStopGrace bounds how long a node whose storage failed waits for its
// sockets to close before it exits.
const failStopGrace = 3 * time.Second

// refuseWhenFailed is h, but once the node's storage failed (failure set)
// it takes no new work: every request but the probes and metrics is
// answered 503, WebSocket upgrades and Raft messages included. Nothing of
// such a request was done, so a node that forwarded it may send it on
// (runtime.HeaderNotServed).
func refuseWhenFailed(h http.Handler, failure *atomic.Pointer[error]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failure.Load() != nil {
			switch r.URL.Path {
			case "/readyz", "/healthz", "/metrics":
			default:
				w.Header().Set(runtime.HeaderNotServed, "1")
				protocol.WriteHTTPError(w, http.StatusServiceUnavailable, protocol.Errorf(protocol.CodeUnavailable, "node failed: its storage cannot commit"))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// checkDataDir creates dir if needed and proves it is writable, so a bad
// directory fails at start with one clear line, not at the first write.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data directory %s unusable: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("data directory %s not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// storeMetrics exports group commit figures.
type storeMetrics struct {
	groups  prometheus.Counter
	batches prometheus.Counter
	size    prometheus.Histogram
	seconds prometheus.Histogram
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	m := &storeMetrics{
		groups:  prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_storage_group_commits_total", Help: "fsync'd Pebble batches (group commits)."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_storage_batches_total", Help: "Object event batches committed."}),
		size:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: "holocron_storage_group_commit_batches", Help: "Event batches per group commit.", Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "holocron_storage_group_commit_seconds", Help: "Time of one group commit including fsync.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14)}),
	}
	reg.MustRegister(m.groups, m.batches, m.size, m.seconds)
	return m
}

func (m *storeMetrics) ObserveGroupCommit(batches, _ int, took time.Duration) {
	m.groups.Inc()
	m.batches.Add(float64(batches))
	m.size.Observe(float64(batches))
	m.seconds.Observe(took.Seconds())
}
