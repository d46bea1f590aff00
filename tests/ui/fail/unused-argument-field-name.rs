#![deny(unused_variables)]

// An argument named as a field, a method or a path segment the body uses
// (`self.id`, `v.len()`, `Self::count`) is still unused, as rustc reports
// for an `async fn`; one used as a range's end is not.
struct Peer {
    id: u64,
}

impl Peer {
    fn count() -> usize {
        3
    }

    #[tracked::tracked]
    async fn id(&self, id: u64, len: usize, v: Vec<u8>, count: u8, n: u32) -> usize {
        let _ = self.id;
        (0..n).count() + v.len() + Self::count()
    }
}

fn main() {
    let peer = Peer { id: 1 };
    let _ = peer.id(1, 2, Vec::new(), 3, 4);
}
