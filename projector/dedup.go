package projector

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// existingIDsSQL finds which of the bound ids ClickHouse already holds.
// ClickHouse 18.16 rejects `id IN (['a','b'])` (an array bound into a
// tuple), so the bound []string is unrolled with arrayJoin; the IN set still
// uses event_ids' primary key (ORDER BY id).
const existingIDsSQL = "SELECT id FROM event_ids WHERE id IN (SELECT arrayJoin(?))"

// maxStreamSeqSQL is the highest stream sequence already projected, read
// once per Run: deliveries at or below it may be in ClickHouse already (a
// consumer that was reset or recreated replays them).
const maxStreamSeqSQL = "SELECT max(stream_seq) FROM events"

// lookupChunk bounds the ids per existence query: ids are at most 128 bytes,
// so a chunk stays well below ClickHouse's default max_query_size (256 KiB).
const lookupChunk = 1000

// existingIDs returns the subset of ids already in event_ids.
func existingIDs(ctx context.Context, conn driver.Conn, ids []string) (map[string]struct{}, error) {
	found := make(map[string]struct{})
	for start := 0; start < len(ids); start += lookupChunk {
		chunk := ids[start:min(start+lookupChunk, len(ids))]
		if err := queryIDs(ctx, conn, chunk, found); err != nil {
			return nil, err
		}
	}
	return found, nil
}

func queryIDs(ctx context.Context, conn driver.Conn, ids []string, found map[string]struct{}) error {
	rows, err := conn.Query(ctx, existingIDsSQL, ids)
	if err != nil {
		return fmt.Errorf("look up %d event ids: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("scan event id: %w", err)
		}
		found[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up %d event ids: %w", len(ids), err)
	}
	return nil
}

// maxStreamSeq returns the highest stream_seq in events (0 when empty).
func maxStreamSeq(ctx context.Context, conn driver.Conn) (uint64, error) {
	var seq uint64
	if err := conn.QueryRow(ctx, maxStreamSeqSQL).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read projected stream sequence: %w", err)
	}
	return seq, nil
}
