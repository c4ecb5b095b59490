//! TensorBoard event files: a run's scalars as TensorBoard, `wandb sync` and other trackers
//! read them.
//!
//! No maintained crate writes them (2026-12: `tensorboard-rs` was last released in 2022 on
//! protobuf 2 and its repository says it is not active; `tfrecord` was last released in 2023 and
//! pulls in prost, image, ndarray and tch; `syntaxdot-summary` is the writer of a project that
//! stopped in 2022), and the part runner needs is small, so it is written here:
//!
//! * a file is a sequence of TFRecords: `u64` length (little-endian), the masked CRC-32C of those
//!   8 bytes, the data, the masked CRC-32C of the data ([`record`], [`masked_crc32c`]);
//! * each record's data is a protobuf `tensorboard.Event` (`tensorboard/compat/proto/event.proto`):
//!   `wall_time` (field 1, double), `step` (2, int64), and one of `file_version` (3, string),
//!   `summary` (5) or `session_log` (7); a `Summary` holds repeated `Value`s (field 1), each a
//!   `tag` (1, string) and a `simple_value` (2, float). [`Event::encode`] writes exactly these
//!   fields, omitting a zero step as proto3 does, and [`Event::decode`] reads them and skips any
//!   other field.
//!
//! What a run writes ([`EventLog`]): one file per session of the run (the first, and each
//! `runner resume`), `events.out.tfevents.<secs>.<host>.<pid>.runner` directly in the run folder,
//! so `tensorboard --logdir results/` names each run `<experiment>/<run-id>`. The x axis is the
//! global optimizer step (counted from the start of the run): every `--log-every` steps of an
//! epoch the `batch/*` scalars, and at the step that ends an epoch one scalar per column of
//! `metrics.csv` (`epoch` among them), with the very numbers that file holds ([`epoch_tag`]).
//!
//! Each file starts with the `file_version` event `brain.Event:2` and a `session_log` START at
//! the session's first step. TensorBoard's Python loader (`EventAccumulator`, which
//! `--load_fast=false` and `scripts/read-tensorboard.py` use) drops every point it has read at
//! that step or later when it meets a START (`_CheckForRestartAndMaybePurge` and `_Purge` in
//! `tensorboard/backend/event_processing/event_accumulator.py`), so the epochs a resumed run
//! trains again replace the ones the interrupted session had written after its checkpoint,
//! instead of showing twice. TensorBoard's Rust data server (the default `--load_fast`) ignores
//! the START and does the same per tag: a point at step `s` evicts the points of its tag at `s`
//! or later (`tensorboard/data/server/reservoir.rs`). Files are read in name order, so a new
//! session's file is named after every file already in the folder (see [`EventWriter::create`]).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::tables::metrics_cells;
use super::{EpochMetrics, ReportError, METRICS_HEADER};

/// What every event file's name contains; TensorBoard reads the files whose names hold it.
pub const EVENT_FILE_MARK: &str = "tfevents";
/// The `file_version` of the first event: version 2 is the one whose readers honour
/// `session_log` START.
pub const FILE_VERSION: &str = "brain.Event:2";
/// `SessionLog.SessionStatus.START` in `event.proto`.
const SESSION_START: u64 = 1;

/// CRC-32C (Castagnoli), which TFRecord uses; `crc`'s name for it is CRC-32/ISCSI.
const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// TFRecord's masked CRC-32C of `bytes`: the checksum rotated right by 15 bits plus
/// `0xa282ead8` (`masked_crc32c` in TensorFlow's `crc32c.h`).
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    CASTAGNOLI
        .checksum(bytes)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// `data` framed as one TFRecord.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// The records of a TFRecord file's bytes, both checksums of each verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Records<'a> {
    /// Each record's data, in order.
    pub records: Vec<&'a [u8]>,
    /// Whether the bytes end inside a record: what a writer still at work, or one killed in the
    /// middle of a write, leaves. Readers stop there, as TensorBoard does.
    pub truncated: bool,
}

/// Splits `bytes` into TFRecords; a checksum that does not match is an error naming the record
/// and its byte offset.
pub fn read_records(bytes: &[u8]) -> Result<Records<'_>, String> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let Some((head, after)) = rest.split_first_chunk::<12>() else {
            return Ok(Records {
                records,
                truncated: true,
            });
        };
        let (len_bytes, len_crc) = head.split_at(8);
        if masked_crc32c(len_bytes).to_le_bytes() != len_crc {
            return Err(format!(
                "record {} at byte {at}: the length's checksum does not match",
                records.len() + 1
            ));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(len_bytes);
        let len = u64::from_le_bytes(len);
        let Some(total) = usize::try_from(len).ok().and_then(|l| l.checked_add(4)) else {
            return Err(format!(
                "record {} at byte {at}: length {len} is too large",
                records.len() + 1
            ));
        };
        if after.len() < total {
            return Ok(Records {
                records,
                truncated: true,
            });
        }
        let (data, data_crc) = after[..total].split_at(total - 4);
        if masked_crc32c(data).to_le_bytes() != data_crc {
            return Err(format!(
                "record {} at byte {at}: the data's checksum does not match",
                records.len() + 1
            ));
        }
        records.push(data);
        at += 12 + total;
    }
    Ok(Records {
        records,
        truncated: false,
    })
}

/// One `tensorboard.Event`, as far as runner writes and reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// The global step the event belongs to.
    pub step: i64,
    /// What the event says.
    pub what: What,
}

/// The part of an [`Event`] that says what happened.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// `file_version`: the first event of a file.
    FileVersion(String),
    /// `summary` with `simple_value`s: `(tag, value)` pairs. (Values of other kinds in a file
    /// written by another program are left out when read.)
    Scalars(Vec<(String, f32)>),
    /// `session_log` with status START: a (re)start at `step`.
    SessionStart,
    /// Anything else (a graph, another session status, no payload): read, not interpreted.
    Other,
}

impl Event {
    /// The protobuf encoding of the event.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        key(&mut out, 1, 1);
        out.extend_from_slice(&self.wall_time.to_le_bytes());
        if self.step != 0 {
            key(&mut out, 2, 0);
            // int64 is encoded as the two's-complement bits, as protobuf does.
            varint(&mut out, self.step as u64);
        }
        match &self.what {
            What::FileVersion(v) => bytes_field(&mut out, 3, v.as_bytes()),
            What::Scalars(values) => {
                let mut summary = Vec::new();
                for (tag, value) in values {
                    let mut v = Vec::with_capacity(tag.len() + 8);
                    bytes_field(&mut v, 1, tag.as_bytes());
                    key(&mut v, 2, 5);
                    v.extend_from_slice(&value.to_le_bytes());
                    bytes_field(&mut summary, 1, &v);
                }
                bytes_field(&mut out, 5, &summary);
            }
            What::SessionStart => {
                let mut log = Vec::new();
                key(&mut log, 1, 0);
                varint(&mut log, SESSION_START);
                bytes_field(&mut out, 7, &log);
            }
            What::Other => {}
        }
        out
    }

    /// Reads an event from its protobuf encoding; fields runner does not know are skipped.
    pub fn decode(bytes: &[u8]) -> Result<Event, String> {
        let mut event = Event {
            wall_time: 0.0,
            step: 0,
            what: What::Other,
        };
        for field in Fields(bytes) {
            match field? {
                (1, Wire::Fixed64(bits)) => event.wall_time = f64::from_bits(bits),
                (2, Wire::Varint(v)) => event.step = v as i64,
                (3, Wire::Bytes(b)) => {
                    let v = std::str::from_utf8(b)
                        .map_err(|_| "a file_version that is not UTF-8".to_string())?;
                    event.what = What::FileVersion(v.to_string());
                }
                (5, Wire::Bytes(b)) => event.what = What::Scalars(decode_summary(b)?),
                (7, Wire::Bytes(b)) => {
                    let mut status = 0;
                    for field in Fields(b) {
                        if let (1, Wire::Varint(v)) = field? {
                            status = v;
                        }
                    }
                    event.what = if status == SESSION_START {
                        What::SessionStart
                    } else {
                        What::Other
                    };
                }
                (4 | 6 | 8 | 9, _) => event.what = What::Other,
                _ => {}
            }
        }
        Ok(event)
    }
}

/// The `simple_value`s of a `Summary`.
fn decode_summary(bytes: &[u8]) -> Result<Vec<(String, f32)>, String> {
    let mut values = Vec::new();
    for field in Fields(bytes) {
        let (1, Wire::Bytes(value)) = field? else {
            continue;
        };
        let (mut tag, mut simple) = (String::new(), None);
        for field in Fields(value) {
            match field? {
                (1, Wire::Bytes(b)) => {
                    tag = std::str::from_utf8(b)
                        .map_err(|_| "a tag that is not UTF-8".to_string())?
                        .to_string();
                }
                (2, Wire::Fixed32(bits)) => simple = Some(f32::from_bits(bits)),
                _ => {}
            }
        }
        if let Some(v) = simple {
            values.push((tag, v));
        }
    }
    Ok(values)
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One protobuf field's value, by wire type.
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of one protobuf message, in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn read_varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for (i, &b) in self.0.iter().enumerate().take(10) {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.0 = &self.0[i + 1..];
                return Ok(v);
            }
        }
        Err("a varint that does not end".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "a field of {n} bytes where {} are left",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<(u32, Wire<'a>), String> {
        let key = self.read_varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| format!("field number {}", key >> 3))?;
        let value = match key & 7 {
            0 => Wire::Varint(self.read_varint()?),
            1 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(self.take(8)?);
                Wire::Fixed64(u64::from_le_bytes(b))
            }
            2 => {
                let len = self.read_varint()?;
                let len = usize::try_from(len).map_err(|_| format!("a length of {len}"))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                let mut b = [0u8; 4];
                b.copy_from_slice(self.take(4)?);
                Wire::Fixed32(u32::from_le_bytes(b))
            }
            w => {
                return Err(format!(
                    "wire type {w} (field {number}), which events do not use"
                ))
            }
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            // One error ends the message: what follows cannot be framed.
            self.0 = &[];
        }
        Some(field)
    }
}

/// Seconds since the Unix epoch, now.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's name as a file-name part: as `gethostname` gives it (TensorFlow's writers do
/// the same, and `wandb`'s TensorBoard sync only reads files whose name holds the exact host
/// name), with `/` made `_` and at most 200 bytes; `localhost` when it cannot be had.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes at most that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(buf.len())
        .min(200);
    let name = if rc == 0 {
        String::from_utf8_lossy(&buf[..end]).replace('/', "_")
    } else {
        String::new()
    };
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// The event files in `dir`, in the order TensorBoard reads them (by name).
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ReportError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(EVENT_FILE_MARK))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// The seconds in an event file name `events.out.tfevents.<secs>.…`, if it has them.
fn name_seconds(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let rest = name.split_once(".tfevents.")?.1;
    rest.split('.').next()?.parse().ok()
}

/// Writes one event file.
#[derive(Debug)]
pub struct EventWriter {
    file: File,
    path: PathBuf,
    /// Bytes of whole records written: a failed write is cut back to this length.
    len: u64,
}

impl EventWriter {
    /// Creates a new event file in `dir` and writes its first events: the `file_version` and a
    /// `session_log` START at `start_step`, the first step this session trains.
    ///
    /// The name is `events.out.tfevents.<secs>.<host>.<pid>.runner` with `<secs>` the current
    /// Unix time, or one more than the largest in an event file already in `dir` when that is
    /// not earlier (two sessions within one second): TensorBoard reads a folder's files in name
    /// order, and the START must come after the points it replaces. An existing file is never
    /// opened.
    pub fn create(dir: &Path, start_step: i64) -> Result<EventWriter, ReportError> {
        let existing = event_files(dir)?;
        let newest = existing.iter().filter_map(|p| name_seconds(p)).max();
        let mut secs = (now() as u64).max(newest.map_or(0, |s| s + 1));
        let (host, pid) = (host_name(), std::process::id());
        let file = loop {
            let path = dir.join(format!(
                "events.out.{EVENT_FILE_MARK}.{secs:010}.{host}.{pid}.runner"
            ));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (file, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => secs += 1,
                Err(source) => return Err(ReportError::Write { path, source }),
            }
        };
        let mut writer = EventWriter {
            file: file.0,
            path: file.1,
            len: 0,
        };
        let wall_time = now();
        writer.write(&Event {
            wall_time,
            step: 0,
            what: What::FileVersion(FILE_VERSION.into()),
        })?;
        writer.write(&Event {
            wall_time,
            step: start_step,
            what: What::SessionStart,
        })?;
        Ok(writer)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` as one record. Each record goes to the operating system in one write,
    /// so a live TensorBoard sees it at once; if the write fails the file is cut back to its
    /// last whole record (best effort).
    pub fn write(&mut self, event: &Event) -> Result<(), ReportError> {
        let bytes = record(&event.encode());
        match self.file.write_all(&bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(source) => {
                let _ = self.file.set_len(self.len);
                Err(ReportError::Write {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }

    /// Appends the scalars `values` at `step`, now, in one event.
    pub fn scalars(&mut self, step: i64, values: &[(&str, f32)]) -> Result<(), ReportError> {
        self.write(&Event {
            wall_time: now(),
            step,
            what: What::Scalars(values.iter().map(|(t, v)| (t.to_string(), *v)).collect()),
        })
    }

    /// Appends one scalar.
    pub fn scalar(&mut self, tag: &str, step: i64, value: f32) -> Result<(), ReportError> {
        self.scalars(step, &[(tag, value)])
    }

    /// Makes what was written durable (fsync).
    pub fn flush(&mut self) -> Result<(), ReportError> {
        self.file.sync_data().map_err(|source| ReportError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

/// An event file read back.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFile {
    /// Its events, in order.
    pub events: Vec<Event>,
    /// Whether it ends inside a record ([`Records::truncated`]).
    pub truncated: bool,
}

/// Reads the event file at `path`, checking every record's checksums.
pub fn read_event_file(path: &Path) -> Result<EventFile, ReportError> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse = |message: String| ReportError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let records = read_records(&bytes).map_err(parse)?;
    let events = records
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| Event::decode(r).map_err(|m| parse(format!("record {}: {m}", i + 1))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EventFile {
        events,
        truncated: records.truncated,
    })
}

/// One point of a scalar time series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalarPoint {
    /// Its step.
    pub step: i64,
    /// Its value.
    pub value: f32,
}

/// The scalar series of the event files in `dir`, by tag, as TensorBoard's `EventAccumulator`
/// shows them: files in name order, and a `session_log` START at step `s` drops every point
/// read so far at step `s` or later.
pub fn read_scalars(dir: &Path) -> Result<BTreeMap<String, Vec<ScalarPoint>>, ReportError> {
    let mut series: BTreeMap<String, Vec<ScalarPoint>> = BTreeMap::new();
    for path in event_files(dir)? {
        for event in read_event_file(&path)?.events {
            match event.what {
                What::SessionStart => {
                    for points in series.values_mut() {
                        points.retain(|p| p.step < event.step);
                    }
                }
                What::Scalars(values) => {
                    for (tag, value) in values {
                        series.entry(tag).or_default().push(ScalarPoint {
                            step: event.step,
                            value,
                        });
                    }
                }
                What::FileVersion(_) | What::Other => {}
            }
        }
    }
    Ok(series)
}

/// The tag of `metrics.csv`'s column `column` in the event files: its first `_` becomes `/`,
/// so TensorBoard groups `train/loss` with `train/acc` (`epoch`, `lr` and `seconds` stay as
/// they are). `scripts/read-tensorboard.py` applies the same rule.
pub fn epoch_tag(column: &str) -> String {
    column.replacen('_', "/", 1)
}

/// Tag of the mean training loss of the epoch so far.
pub const BATCH_RUNNING_LOSS: &str = "batch/running_loss";
/// Tag of the latest batch's loss (what a plain progress line prints).
pub const BATCH_LOSS: &str = "batch/loss";
/// Tag of the latest batch's accuracy, in percent.
pub const BATCH_ACC: &str = "batch/acc";
/// Tag of the learning rate of the latest step.
pub const BATCH_LR: &str = "batch/lr";

/// What [`EventLog::step`] records of one optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepScalars {
    /// Mean training loss over the epoch so far.
    pub running_loss: f64,
    /// This batch's loss.
    pub batch_loss: f64,
    /// This batch's accuracy, in percent.
    pub batch_acc: f64,
    /// The learning rate of the step.
    pub lr: f64,
}

/// Where an [`EventLog`] says that it stopped writing.
pub type Warn = Box<dyn FnMut(&str) + Send>;

/// The TensorBoard events of one session of a run: the training loop tells it of steps and
/// epochs, and it writes what is due.
///
/// Event files are a view for trackers; `metrics.csv` is the record. So a failure to create or
/// write the file does not stop the run: the log warns once (through the `warn` given to
/// [`EventLog::open`], naming the file and the error), cuts the file back to its last whole
/// record, and writes nothing more this session.
pub struct EventLog {
    writer: Option<EventWriter>,
    every: usize,
    warn: Warn,
    failure: Option<String>,
}

impl EventLog {
    /// A log that writes nothing (`--no-tensorboard`).
    pub fn disabled() -> EventLog {
        EventLog {
            writer: None,
            every: 0,
            warn: Box::new(|_| {}),
            failure: None,
        }
    }

    /// Starts this session's event file in `dir` ([`EventWriter::create`]); `steps_done` is the
    /// global step the session starts after (0, or the checkpoint's when resuming), `every`
    /// how often [`EventLog::step`] writes (0: never).
    pub fn open(dir: &Path, steps_done: usize, every: usize, warn: Warn) -> EventLog {
        let mut log = EventLog {
            writer: None,
            every,
            warn,
            failure: None,
        };
        match EventWriter::create(dir, step_of(steps_done + 1)) {
            Ok(w) => log.writer = Some(w),
            Err(e) => log.fail(&e),
        }
        log
    }

    /// Records step `step_in_epoch` (1-based) of the epoch, the run's step `global_step`: the
    /// [`StepScalars`] every `every` steps of an epoch (the steps a plain progress line is
    /// written at).
    pub fn step(&mut self, global_step: usize, step_in_epoch: usize, s: &StepScalars) {
        if self.every == 0 || !step_in_epoch.is_multiple_of(self.every) {
            return;
        }
        let values = [
            (BATCH_RUNNING_LOSS, s.running_loss as f32),
            (BATCH_LOSS, s.batch_loss as f32),
            (BATCH_ACC, s.batch_acc as f32),
            (BATCH_LR, s.lr as f32),
        ];
        self.write(global_step, &values);
    }

    /// Records a finished epoch at `global_step`, the step that ended it: one scalar per column
    /// of `metrics.csv`, tagged [`epoch_tag`], valued as the file's cell (so the two agree to
    /// the last digit, as `f32`).
    pub fn epoch(&mut self, m: &EpochMetrics, global_step: usize) {
        let tags: Vec<String> = METRICS_HEADER.split(',').map(epoch_tag).collect();
        let values: Vec<(&str, f32)> = tags
            .iter()
            .zip(metrics_cells(m))
            .filter_map(|(tag, cell)| Some((tag.as_str(), cell.parse::<f64>().ok()? as f32)))
            .collect();
        self.write(global_step, &values);
    }

    /// The file this session writes, while it does.
    pub fn path(&self) -> Option<&Path> {
        self.writer.as_ref().map(EventWriter::path)
    }

    /// The warning given when writing stopped, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn write(&mut self, step: usize, values: &[(&str, f32)]) {
        let Some(w) = &mut self.writer else {
            return;
        };
        if let Err(e) = w.scalars(step_of(step), values) {
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &ReportError) {
        self.writer = None;
        if self.failure.is_none() {
            let message = format!(
                "warning: TensorBoard events stop here ({e}); the run goes on, and metrics.csv \
                 has every epoch"
            );
            (self.warn)(&message);
            self.failure = Some(message);
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        if let Some(w) = &mut self.writer {
            if let Err(e) = w.flush() {
                self.fail(&e);
            }
        }
    }
}

/// A step count as protobuf's int64 (saturating; no run takes 2^63 steps).
fn step_of(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// TensorBoard 2.21.0's own encoder and framing, for the three kinds of event runner writes:
    ///
    /// ```python
    /// import io
    /// from tensorboard.compat.proto import event_pb2, summary_pb2
    /// from tensorboard.summary.writer.record_writer import RecordWriter
    /// def rec(ev):
    ///     b = io.BytesIO(); RecordWriter(b).write(ev.SerializeToString()); return b.getvalue().hex()
    /// rec(event_pb2.Event(wall_time=1700000000.5, step=42, summary=summary_pb2.Summary(
    ///     value=[summary_pb2.Summary.Value(tag="train/loss", simple_value=0.25)])))
    /// rec(event_pb2.Event(wall_time=1700000000.5, file_version="brain.Event:2"))
    /// rec(event_pb2.Event(wall_time=1700000000.5, step=7,
    ///     session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))
    /// ```
    const GOLDEN: [(&str, &str); 3] = [
        (
            "scalar",
            "200000000000000029eda9500900002040fc54d941102a2a130a110a0a747261696e2f6c6f7373150000803e01be611b",
        ),
        (
            "file_version",
            "1800000000000000a37f4b220900002040fc54d9411a0d627261696e2e4576656e743a322b353110",
        ),
        (
            "session start",
            "0f000000000000006d532b090900002040fc54d94110073a0208019beb06a7",
        ),
    ];

    fn golden_events() -> [Event; 3] {
        let wall_time = 1_700_000_000.5;
        [
            Event {
                wall_time,
                step: 42,
                what: What::Scalars(vec![("train/loss".into(), 0.25)]),
            },
            Event {
                wall_time,
                step: 0,
                what: What::FileVersion(FILE_VERSION.into()),
            },
            Event {
                wall_time,
                step: 7,
                what: What::SessionStart,
            },
        ]
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn records_are_byte_identical_to_tensorboards_own() {
        for ((what, want), event) in GOLDEN.iter().zip(golden_events()) {
            let bytes = record(&event.encode());
            assert_eq!(hex(&bytes), *want, "{what}");
            let read = read_records(&bytes).expect("valid record");
            assert!(!read.truncated, "{what}");
            assert_eq!(read.records.len(), 1, "{what}");
            assert_eq!(
                Event::decode(read.records[0]).expect("decodes"),
                event,
                "{what}"
            );
        }
    }

    #[test]
    fn masked_crc32c_matches_the_published_check_value() {
        // CRC-32C of "123456789" is 0xe3069283 (the catalogue's check value); masked by hand:
        // rotate right 15 = 0x2507c60d, plus 0xa282ead8 = 0xc78ab0e5.
        assert_eq!(CASTAGNOLI.checksum(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn a_flipped_byte_anywhere_is_caught_by_a_checksum_and_a_short_tail_is_truncation() {
        let event = golden_events()[0].clone();
        let one = record(&event.encode());
        let mut two = one.clone();
        two.extend_from_slice(&one);
        let read = read_records(&two).expect("two records");
        assert_eq!(read.records.len(), 2);
        for i in 0..one.len() {
            let mut bad = two.clone();
            bad[one.len() + i] ^= 0x10;
            match read_records(&bad) {
                Err(e) => assert!(e.starts_with("record 2 at byte 48: the "), "byte {i}: {e}"),
                // A flip in the length's high bytes makes a length longer than the file, which
                // is caught as truncation only when its checksum still matches: never here.
                Ok(r) => panic!("byte {i}: a flipped byte went unnoticed: {r:?}"),
            }
        }
        for cut in 1..one.len() {
            let read = read_records(&two[..one.len() + cut]).expect("a cut tail is no error");
            assert!(read.truncated, "cut {cut}");
            assert_eq!(read.records.len(), 1, "cut {cut}");
        }
    }

    #[test]
    fn decoding_skips_unknown_fields_and_rejects_broken_messages() {
        let mut bytes = golden_events()[0].encode();
        // source_metadata (field 10) with a writer name, which TensorFlow 2 adds.
        bytes.extend_from_slice(&[0x52, 0x04, 0x0a, 0x02, b'p', b'y']);
        assert_eq!(Event::decode(&bytes), Ok(golden_events()[0].clone()));
        let cases: [(&[u8], &str); 4] = [
            (&[0x09, 1, 2, 3], "a field of 8 bytes where 3 are left"),
            (&[0x10, 0xff], "a varint that does not end"),
            (&[0x2a, 0x05, 0x0a], "a field of 5 bytes where 1 are left"),
            (&[0x0b], "wire type 3 (field 1), which events do not use"),
        ];
        for (bytes, want) in cases {
            assert_eq!(Event::decode(bytes), Err(want.to_string()), "{bytes:?}");
        }
    }

    #[test]
    fn epoch_tags_group_each_split_and_keep_single_words() {
        let cases = [
            ("epoch", "epoch"),
            ("train_loss", "train/loss"),
            ("train_acc", "train/acc"),
            ("test_loss", "test/loss"),
            ("test_acc", "test/acc"),
            ("lr", "lr"),
            ("seconds", "seconds"),
            ("train_images_per_sec", "train/images_per_sec"),
            ("eval_images_per_sec", "eval/images_per_sec"),
            ("val_loss", "val/loss"),
            ("val_acc", "val/acc"),
            ("ema_test_loss", "ema/test_loss"),
            ("ema_test_acc", "ema/test_acc"),
        ];
        let columns: Vec<&str> = METRICS_HEADER.split(',').collect();
        assert_eq!(
            columns,
            cases.iter().map(|c| c.0).collect::<Vec<_>>(),
            "every column"
        );
        for (column, tag) in cases {
            assert_eq!(epoch_tag(column), tag, "{column}");
        }
    }

    fn metrics(epoch: usize) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.0 / 3.0,
            train_acc: 200.0 / 3.0,
            test_loss: 0.123_456_789,
            test_acc: 50.0,
            lr: 0.1 / 3.0,
            seconds: 1.234_567,
            train_images_per_sec: 4_500.25,
            eval_images_per_sec: 9_000.75,
            val_loss: None,
            val_acc: None,
            ema_test_loss: None,
            ema_test_acc: None,
        }
    }

    type Warnings = Arc<Mutex<Vec<String>>>;

    fn collecting() -> (Warnings, Warn) {
        let seen = Warnings::default();
        let sink = seen.clone();
        (
            seen,
            Box::new(move |w: &str| sink.lock().unwrap().push(w.to_string())),
        )
    }

    #[test]
    fn a_session_writes_version_start_steps_and_epochs_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (warnings, warn) = collecting();
        let mut log = EventLog::open(dir.path(), 0, 2, warn);
        let s = StepScalars {
            running_loss: 0.75,
            batch_loss: 0.5,
            batch_acc: 62.5,
            lr: 0.01,
        };
        for step in 1..=4 {
            log.step(step, step, &s);
        }
        log.epoch(&metrics(1), 4);
        let path = log.path().unwrap().to_path_buf();
        drop(log);
        assert!(warnings.lock().unwrap().is_empty());

        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        assert!(
            name.ends_with(&format!(".{}.runner", std::process::id())),
            "{name}"
        );
        assert_eq!(event_files(dir.path()).unwrap(), vec![path.clone()]);
        let file = read_event_file(&path).unwrap();
        assert!(!file.truncated);
        let kinds: Vec<(i64, &What)> = file.events.iter().map(|e| (e.step, &e.what)).collect();
        assert_eq!(kinds[0], (0, &What::FileVersion("brain.Event:2".into())));
        assert_eq!(kinds[1], (1, &What::SessionStart));
        assert_eq!(kinds.len(), 5, "version, start, steps 2 and 4, the epoch");

        let scalars = read_scalars(dir.path()).unwrap();
        let at = |tag: &str| -> Vec<(i64, f32)> {
            scalars[tag].iter().map(|p| (p.step, p.value)).collect()
        };
        assert_eq!(at(BATCH_LOSS), [(2, 0.5), (4, 0.5)]);
        assert_eq!(at(BATCH_RUNNING_LOSS), [(2, 0.75), (4, 0.75)]);
        assert_eq!(at(BATCH_ACC), [(2, 62.5), (4, 62.5)]);
        assert_eq!(at(BATCH_LR), [(2, 0.01), (4, 0.01)]);
        // The cells of metrics.csv, not the unrounded numbers: 0.333333, 66.6667, 0.123457.
        assert_eq!(at("train/loss"), [(4, 0.333_333_f32)]);
        assert_eq!(at("train/acc"), [(4, 66.6667_f32)]);
        assert_eq!(at("test/loss"), [(4, 0.123_457_f32)]);
        assert_eq!(at("epoch"), [(4, 1.0)]);
        assert_eq!(at("lr"), [(4, (0.1_f64 / 3.0) as f32)]);
        assert_eq!(at("seconds"), [(4, 1.235_f32)]);
        assert_eq!(scalars.len(), 4 + 9, "{:?}", scalars.keys());
    }

    #[test]
    fn a_resumed_session_replaces_the_points_after_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let quiet = || -> Warn { Box::new(|_| {}) };
        // Session 1: epochs 1 and 2 (4 steps each), killed after writing epoch 3's end.
        let mut first = EventLog::open(dir.path(), 0, 0, quiet());
        for e in 1..=3 {
            first.epoch(&metrics(e), 4 * e);
        }
        drop(first);
        // Session 2 resumes from epoch 2's checkpoint (step 8): epoch 3 again, another value.
        let mut second = EventLog::open(dir.path(), 8, 0, quiet());
        second.epoch(
            &EpochMetrics {
                test_acc: 75.0,
                ..metrics(3)
            },
            12,
        );
        drop(second);
        let files = event_files(dir.path()).unwrap();
        assert_eq!(files.len(), 2, "one file per session");
        let second_file = read_event_file(&files[1]).unwrap();
        assert_eq!(second_file.events[1].what, What::SessionStart);
        assert_eq!(
            second_file.events[1].step, 9,
            "the first step after the checkpoint"
        );
        let acc: Vec<(i64, f32)> = read_scalars(dir.path()).unwrap()["test/acc"]
            .iter()
            .map(|p| (p.step, p.value))
            .collect();
        assert_eq!(acc, [(4, 50.0), (8, 50.0), (12, 75.0)]);
    }

    #[test]
    fn a_folder_that_cannot_take_the_file_warns_once_and_the_log_goes_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_folder = dir.path().join("file");
        std::fs::write(&not_a_folder, "x").unwrap();
        let (warnings, warn) = collecting();
        let mut log = EventLog::open(&not_a_folder, 0, 1, warn);
        log.epoch(&metrics(1), 1);
        log.step(
            2,
            1,
            &StepScalars {
                running_loss: 1.0,
                batch_loss: 1.0,
                batch_acc: 1.0,
                lr: 1.0,
            },
        );
        drop(log);
        let warnings = warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("warning: TensorBoard events stop here (cannot read "),
            "{}",
            warnings[0]
        );
        assert!(warnings[0].contains("metrics.csv has every epoch"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failing_write_warns_once_and_nothing_more_is_written() {
        // /dev/full takes the open and fails every write with ENOSPC, like a full disk.
        let file = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let (warnings, warn) = collecting();
        let mut log = EventLog {
            writer: Some(EventWriter {
                file,
                path: PathBuf::from("/dev/full"),
                len: 0,
            }),
            every: 1,
            warn,
            failure: None,
        };
        log.epoch(&metrics(1), 4);
        assert!(log.path().is_none(), "the writer is dropped");
        log.epoch(&metrics(2), 8);
        drop(log);
        let warnings = warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("cannot write /dev/full"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn a_new_session_in_the_same_second_sorts_after_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let far = dir
            .path()
            .join("events.out.tfevents.9999999990.elsewhere.1.runner");
        std::fs::write(&far, record(&golden_events()[1].encode())).unwrap();
        let w = EventWriter::create(dir.path(), 1).unwrap();
        let name = w.path().file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            name.starts_with("events.out.tfevents.9999999991."),
            "{name}"
        );
        assert_eq!(event_files(dir.path()).unwrap().last().unwrap(), w.path());
    }
}
