//! Server-sent events' `data:` payloads out of bytes however a provider cut them: every byte is
//! looked at once, and a line longer than the cap ends the stream rather than the memory.

/// A line passed the cap before it ended; the payloads of the lines completed before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong(pub Vec<Vec<u8>>);

#[derive(Debug)]
pub struct Lines {
    /// The unfinished line.
    pending: Vec<u8>,
    /// How much of `pending` holds no line end.
    scanned: usize,
    max: usize,
}

impl Lines {
    /// Lines of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            pending: Vec::new(),
            scanned: 0,
            max,
        }
    }

    /// The `data:` payloads (trimmed) of the lines these bytes complete, in order; [`TooLong`]
    /// once the unfinished line passes the cap (the stream is over: [`Lines::pending`] holds
    /// what came of the line).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, TooLong> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(at) = self.pending[self.scanned..]
            .iter()
            .position(|b| *b == b'\n')
        {
            let end = self.scanned + at;
            if let Some(data) = self.pending[start..end].strip_prefix(b"data:") {
                out.push(data.trim_ascii().to_vec());
            }
            start = end + 1;
            self.scanned = start;
        }
        if start > 0 {
            // What is left came with these bytes: each byte is moved at most once.
            self.pending.drain(..start);
        }
        self.scanned = self.pending.len();
        if self.pending.len() > self.max {
            return Err(TooLong(out));
        }
        Ok(out)
    }

    /// The longest line.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The unfinished line's bytes.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_come_whole_however_the_bytes_are_cut() {
        let stream = b"event: x\ndata: {\"a\":1}\r\n\ndata:[DONE]\n\n";
        for cut in 1..stream.len() {
            let mut lines = Lines::new(1024);
            let mut got = lines.feed(&stream[..cut]).expect("short lines");
            got.extend(lines.feed(&stream[cut..]).expect("short lines"));
            assert_eq!(
                got,
                vec![b"{\"a\":1}".to_vec(), b"[DONE]".to_vec()],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_line_past_the_cap_is_refused() {
        let mut lines = Lines::new(10);
        assert_eq!(lines.feed(b"data: 1\ndata: 12"), Ok(vec![b"1".to_vec()]));
        assert_eq!(lines.pending(), b"data: 12");
        // The lines these bytes end come with the refusal of the one past the cap.
        assert_eq!(
            lines.feed(b"\ndata: 2\ndata: 34567"),
            Err(TooLong(vec![b"12".to_vec(), b"2".to_vec()]))
        );
        assert_eq!(lines.pending(), b"data: 34567");
    }
}
