package restic

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Progress is one status line of a running backup or restore. For a backup
// FilesDone and BytesDone count what restic has processed (new, changed and
// unchanged files alike), so the percentage is right for incremental
// backups too; for a restore they count what was restored.
type Progress struct {
	SecondsElapsed uint64
	// PercentDone is a fraction from 0 to 1.
	PercentDone float64
	TotalFiles  uint64
	FilesDone   uint64
	TotalBytes  uint64
	BytesDone   uint64
	ErrorCount  uint64
}

// BackupSummary is the final line of `restic backup --json`.
type BackupSummary struct {
	SnapshotID          string
	FilesNew            uint64
	FilesChanged        uint64
	FilesUnmodified     uint64
	DirsNew             uint64
	DirsChanged         uint64
	DirsUnmodified      uint64
	DataBlobs           int64
	TreeBlobs           int64
	DataAdded           uint64
	DataAddedPacked     uint64
	TotalFilesProcessed uint64
	TotalBytesProcessed uint64
	TotalDuration       time.Duration
	BackupStart         time.Time
	BackupEnd           time.Time
}

// RestoreSummary is the final line of `restic restore --json`.
type RestoreSummary struct {
	SecondsElapsed uint64
	TotalFiles     uint64
	FilesRestored  uint64
	FilesSkipped   uint64
	FilesDeleted   uint64
	TotalBytes     uint64
	BytesRestored  uint64
	BytesSkipped   uint64
}

// Snapshot is one entry of `restic snapshots --json`.
type Snapshot struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Tree     string    `json:"tree"`
	Paths    []string  `json:"paths"`
	Hostname string    `json:"hostname"`
	Username string    `json:"username"`
	Tags     []string  `json:"tags"`
	Parent   string    `json:"parent"`
}

// Stats is the output of `restic stats --json --mode raw-data`.
type Stats struct {
	// TotalSize is the size of the data in the repository (compressed),
	// what KubeStash reports as a component's size.
	TotalSize             uint64 `json:"total_size"`
	TotalUncompressedSize uint64 `json:"total_uncompressed_size"`
	TotalBlobCount        uint64 `json:"total_blob_count"`
	SnapshotsCount        uint64 `json:"snapshots_count"`
}

// message is the union of the JSON lines restic prints with --json on
// stdout (status, summary, verbose_status) and stderr (error, exit_error).
// Fields not listed (current_files) are skipped by the decoder.
type message struct {
	MessageType string `json:"message_type"`

	// status (backup and restore) and restore summary
	SecondsElapsed uint64  `json:"seconds_elapsed"`
	PercentDone    float64 `json:"percent_done"`
	TotalFiles     uint64  `json:"total_files"`
	FilesDone      uint64  `json:"files_done"`
	TotalBytes     uint64  `json:"total_bytes"`
	BytesDone      uint64  `json:"bytes_done"`
	ErrorCount     uint64  `json:"error_count"`
	FilesRestored  uint64  `json:"files_restored"`
	FilesSkipped   uint64  `json:"files_skipped"`
	FilesDeleted   uint64  `json:"files_deleted"`
	BytesRestored  uint64  `json:"bytes_restored"`
	BytesSkipped   uint64  `json:"bytes_skipped"`

	// backup summary
	FilesNew            uint64    `json:"files_new"`
	FilesChanged        uint64    `json:"files_changed"`
	FilesUnmodified     uint64    `json:"files_unmodified"`
	DirsNew             uint64    `json:"dirs_new"`
	DirsChanged         uint64    `json:"dirs_changed"`
	DirsUnmodified      uint64    `json:"dirs_unmodified"`
	DataBlobs           int64     `json:"data_blobs"`
	TreeBlobs           int64     `json:"tree_blobs"`
	DataAdded           uint64    `json:"data_added"`
	DataAddedPacked     uint64    `json:"data_added_packed"`
	TotalFilesProcessed uint64    `json:"total_files_processed"`
	TotalBytesProcessed uint64    `json:"total_bytes_processed"`
	TotalDuration       float64   `json:"total_duration"`
	BackupStart         time.Time `json:"backup_start"`
	BackupEnd           time.Time `json:"backup_end"`
	SnapshotID          string    `json:"snapshot_id"`

	// error and exit_error. restic ≥0.17 writes error as {"message": ...};
	// older versions wrote a bare value, so it is kept raw.
	Error  json.RawMessage `json:"error"`
	During string          `json:"during"`
	Item   string          `json:"item"`
	Code   int             `json:"code"`
	// Message of an exit_error.
	Message string `json:"message"`

	// initialized
	ID         string `json:"id"`
	Repository string `json:"repository"`
}

// parseMessage decodes one JSON line. ok is false for a line that is not a
// JSON object (restic mixes plain text into stderr).
func parseMessage(line []byte) (m message, ok bool) {
	s := strings.TrimSpace(string(line))
	if !strings.HasPrefix(s, "{") {
		return m, false
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return message{}, false
	}
	return m, m.MessageType != ""
}

func (m *message) backupProgress() Progress {
	return Progress{
		SecondsElapsed: m.SecondsElapsed,
		PercentDone:    m.PercentDone,
		TotalFiles:     m.TotalFiles,
		FilesDone:      m.FilesDone,
		TotalBytes:     m.TotalBytes,
		BytesDone:      m.BytesDone,
		ErrorCount:     m.ErrorCount,
	}
}

func (m *message) restoreProgress() Progress {
	return Progress{
		SecondsElapsed: m.SecondsElapsed,
		PercentDone:    m.PercentDone,
		TotalFiles:     m.TotalFiles,
		FilesDone:      m.FilesRestored,
		TotalBytes:     m.TotalBytes,
		BytesDone:      m.BytesRestored,
	}
}

func (m *message) backupSummary() *BackupSummary {
	return &BackupSummary{
		SnapshotID:          m.SnapshotID,
		FilesNew:            m.FilesNew,
		FilesChanged:        m.FilesChanged,
		FilesUnmodified:     m.FilesUnmodified,
		DirsNew:             m.DirsNew,
		DirsChanged:         m.DirsChanged,
		DirsUnmodified:      m.DirsUnmodified,
		DataBlobs:           m.DataBlobs,
		TreeBlobs:           m.TreeBlobs,
		DataAdded:           m.DataAdded,
		DataAddedPacked:     m.DataAddedPacked,
		TotalFilesProcessed: m.TotalFilesProcessed,
		TotalBytesProcessed: m.TotalBytesProcessed,
		TotalDuration:       time.Duration(m.TotalDuration * float64(time.Second)),
		BackupStart:         m.BackupStart,
		BackupEnd:           m.BackupEnd,
	}
}

func (m *message) restoreSummary() *RestoreSummary {
	return &RestoreSummary{
		SecondsElapsed: m.SecondsElapsed,
		TotalFiles:     m.TotalFiles,
		FilesRestored:  m.FilesRestored,
		FilesSkipped:   m.FilesSkipped,
		FilesDeleted:   m.FilesDeleted,
		TotalBytes:     m.TotalBytes,
		BytesRestored:  m.BytesRestored,
		BytesSkipped:   m.BytesSkipped,
	}
}

// errorText renders an error or exit_error line as the text restic would
// have printed without --json.
func (m *message) errorText() string {
	switch m.MessageType {
	case "exit_error":
		return m.Message
	case "error":
		msg := string(m.Error)
		var obj struct {
			Message string `json:"message"`
		}
		var str string
		if json.Unmarshal(m.Error, &obj) == nil && obj.Message != "" {
			msg = obj.Message
		} else if json.Unmarshal(m.Error, &str) == nil {
			msg = str
		}
		switch {
		case m.Item != "" && m.During != "":
			return fmt.Sprintf("error during %s of %s: %s", m.During, m.Item, msg)
		case m.Item != "":
			return fmt.Sprintf("error on %s: %s", m.Item, msg)
		default:
			return "error: " + msg
		}
	}
	return ""
}
