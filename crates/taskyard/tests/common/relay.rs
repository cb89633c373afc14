//! A TCP relay on loopback in front of PostgreSQL, for the tests of what an instance does
//! when its connections fail: it drops every connection and turns new ones away, as a
//! network partition would, or breaks one connection after a statement reached the server,
//! whose answer is lost although it commits.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The text of the statement a relay breaks a connection after, until it did.
type Armed = Arc<Mutex<Option<&'static [u8]>>>;

/// What a relay's broken connections share: the statement armed, how many it broke, and
/// how long (in milliseconds) it keeps a broken connection's server side open.
type Breaking = (Armed, Arc<AtomicUsize>, Arc<AtomicU64>);

/// A TCP relay on loopback in front of PostgreSQL that can drop every connection through
/// it and turn new ones away, as a partition would, then let them through again; or break
/// one connection after a statement it carries reached the server, its answer lost.
pub struct Relay {
    address: SocketAddr,
    cut: watch::Sender<bool>,
    /// Text whose statement breaks its connection once executed (see [`Relay::break_after`]).
    armed: Armed,
    /// How many connections it broke so.
    broken: Arc<AtomicUsize>,
    /// How long it keeps a broken connection's server side open, in milliseconds (see
    /// [`Relay::hold_broken`]).
    hold: Arc<AtomicU64>,
}

impl Relay {
    /// A relay to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (cut, _) = watch::channel(false);
        let (armed, broken) = (Arc::new(Mutex::new(None)), Arc::new(AtomicUsize::new(0)));
        let hold = Arc::new(AtomicU64::new(2_000));
        let watching = cut.clone();
        let breaking: Breaking = (armed.clone(), broken.clone(), hold.clone());
        tokio::spawn(async move {
            while let Ok((near, _)) = listener.accept().await {
                let cut = watching.subscribe();
                if *cut.borrow() {
                    continue;
                }
                let upstream = upstream.clone();
                let breaking = breaking.clone();
                tokio::spawn(async move {
                    let Ok(far) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    relay(near, far, cut, breaking).await;
                });
            }
        });
        Relay {
            address,
            cut,
            armed,
            broken,
            hold,
        }
    }

    /// Breaks the next connection that prepares a statement holding `text`, once its
    /// execution (the client's next message) is on its way to the server: the client sees
    /// its connection closed, while the server runs the statement and commits.
    pub fn break_after(&self, text: &'static [u8]) {
        *self.armed.lock().expect("armed") = Some(text);
    }

    /// Keeps a broken connection's server side open for `hold` (2 s unless told), reading
    /// and dropping what the server sends, as a network that lost the client would: the
    /// server sees its client gone only when the relay closes that side, or when it ends
    /// the session itself.
    pub fn hold_broken(&self, hold: Duration) {
        let millis = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
        self.hold.store(millis, Ordering::SeqCst);
    }

    /// How many connections it broke after a statement (see [`Relay::break_after`]).
    pub fn broken(&self) -> usize {
        self.broken.load(Ordering::SeqCst)
    }

    /// A relay in front of the server of the PostgreSQL URL `url`.
    pub async fn before(url: &str) -> Relay {
        Relay::start(host_of(url).1.to_owned()).await
    }

    /// `url` with its host and port replaced by this relay's.
    pub fn through(&self, url: &str) -> String {
        let (before, _, after) = host_of(url);
        format!("{before}{}{after}", self.address)
    }

    /// Drops every connection and turns new ones away while `cut`.
    pub fn cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// Relays `near` to `far` and back until either ends or `cut`; breaks the connection after
/// the armed statement's execution, once (see [`Relay::break_after`]).
async fn relay(
    near: TcpStream,
    far: TcpStream,
    mut cut: watch::Receiver<bool>,
    (armed, broken, hold): Breaking,
) {
    let ((mut near_read, mut near_write), (mut far_read, mut far_write)) =
        (near.into_split(), far.into_split());
    let (mut up, mut down) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    // The statement was prepared: its execution is the client's next message.
    let mut prepared = false;
    loop {
        tokio::select! {
            read = near_read.read(&mut up) => {
                let Ok(n) = read else { return };
                if n == 0 || far_write.write_all(&up[..n]).await.is_err() {
                    return;
                }
                if prepared {
                    break;
                }
                prepared = prepares(&armed, &up[..n]);
            }
            read = far_read.read(&mut down) => {
                let Ok(n) = read else { return };
                if n == 0 || near_write.write_all(&down[..n]).await.is_err() {
                    return;
                }
            }
            // The guard it answers with is dropped here, not held over the other branches.
            () = async { drop(cut.wait_for(|cut| *cut).await) } => return,
        }
    }
    broken.fetch_add(1, Ordering::SeqCst);
    // The client's side closes now, its statement unanswered; the server's answer is read
    // and dropped, as the network drops it, so that it commits as it would.
    drop((near_read, near_write));
    let hold = Duration::from_millis(hold.load(Ordering::SeqCst));
    let _ = tokio::time::timeout(hold, async {
        while far_read.read(&mut down).await.is_ok_and(|n| n > 0) {}
    })
    .await;
}

/// Whether `sent` prepares the armed statement; disarms it if so.
fn prepares(armed: &Mutex<Option<&'static [u8]>>, sent: &[u8]) -> bool {
    let mut armed = armed.lock().expect("armed");
    let hit = armed.is_some_and(|text| sent.windows(text.len()).any(|window| window == text));
    if hit {
        *armed = None;
    }
    hit
}

/// `url` split around its host and port.
pub fn host_of(url: &str) -> (&str, &str, &str) {
    let start = url.find("://").expect("a scheme") + 3;
    let end = url[start..].find('/').map_or(url.len(), |end| start + end);
    let host = url[start..end].rfind('@').map_or(start, |at| start + at + 1);
    (&url[..host], &url[host..end], &url[end..])
}
