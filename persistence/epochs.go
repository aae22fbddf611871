package persistence

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Epochs are the owner epochs of partitions, by partition, as ClaimPartitions returns
// them; a commit carries the epochs of its events' partitions.
type Epochs map[int]int64

// ClaimPartitions makes owner the owner of partitions: each one's epoch goes up by one
// (from 0 for a partition never claimed) in one transaction, and the new epochs are
// returned. A claim waits for commits in flight that still carry the old epochs (they
// hold the rows FOR SHARE), so once it returns no commit of an earlier owner can land.
func (s *Store) ClaimPartitions(ctx context.Context, partitions []int, owner string) (Epochs, error) {
	out := make(Epochs, len(partitions))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO partition_epochs (partition)
			SELECT unnest($1::int[]) ON CONFLICT (partition) DO NOTHING`, partitions); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE partition_epochs SET epoch = epoch + 1, owner = $2, claimed_at = now()
			WHERE partition = ANY($1) RETURNING partition, epoch`, partitions, owner)
		if err != nil {
			return err
		}
		for rows.Next() {
			var p int
			var e int64
			if err := rows.Scan(&p, &e); err != nil {
				return err
			}
			out[p] = e
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim partitions %v: %w", partitions, err)
	}
	return out, nil
}

// PartitionOwners returns the owner and epoch of every partition ever claimed.
func (s *Store) PartitionOwners(ctx context.Context) (map[int]PartitionOwner, error) {
	rows, err := s.pool.Query(ctx, `SELECT partition, epoch, owner FROM partition_epochs`)
	if err != nil {
		return nil, fmt.Errorf("partition owners: %w", err)
	}
	out := map[int]PartitionOwner{}
	for rows.Next() {
		var p int
		var o PartitionOwner
		if err := rows.Scan(&p, &o.Epoch, &o.Owner); err != nil {
			return nil, fmt.Errorf("partition owners: %w", err)
		}
		out[p] = o
	}
	return out, rows.Err()
}

// PartitionOwner is who last claimed a partition, with the epoch of that claim.
type PartitionOwner struct {
	Owner string
	Epoch int64
}
