package cluster

import "testing"

func TestConverged(t *testing.T) {
	part := func(p int, serving bool, voters, learners int) PartitionStatus {
		return PartitionStatus{Partition: p, Serving: serving, Voters: make([]uint64, voters), Learners: make([]uint64, learners)}
	}
	tests := []struct {
		name     string
		statuses []Status
		want     bool
	}{
		{"no status yet", nil, false},
		{"every partition served by a full group", []Status{
			{Node: "a", Partitions: []PartitionStatus{part(0, true, 3, 0), part(1, false, 3, 0)}},
			{Node: "b", Partitions: []PartitionStatus{part(0, false, 3, 0), part(1, true, 3, 0)}},
		}, true},
		{"a partition nobody serves", []Status{
			{Node: "a", Partitions: []PartitionStatus{part(0, true, 3, 0), part(1, false, 3, 0)}},
		}, false},
		{"a learner still catching up", []Status{
			{Node: "a", Partitions: []PartitionStatus{part(0, true, 3, 1), part(1, true, 3, 0)}},
		}, false},
		{"too few voters", []Status{
			{Node: "a", Partitions: []PartitionStatus{part(0, true, 2, 0), part(1, true, 3, 0)}},
		}, false},
		{"a follower's view does not count", []Status{
			{Node: "a", Partitions: []PartitionStatus{part(0, true, 3, 0), part(1, true, 3, 0)}},
			{Node: "b", Partitions: []PartitionStatus{part(0, false, 1, 0), part(1, false, 0, 0)}},
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, why := Converged(tt.statuses, 3); got != tt.want {
				t.Fatalf("Converged = %v (%s), want %v", got, why, tt.want)
			}
		})
	}
}
