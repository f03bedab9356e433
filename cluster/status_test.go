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

func TestBalanced(t *testing.T) {
	serving := func(p int) PartitionStatus { return PartitionStatus{Partition: p, Serving: true} }
	following := func(p int) PartitionStatus { return PartitionStatus{Partition: p} }
	pref := [][]string{{"a", "b"}, {"b", "a"}}
	tests := []struct {
		name     string
		statuses []Status
		want     bool
	}{
		{"no status yet", nil, false},
		{"each partition led by its preferred member", []Status{
			{Node: "a", Preferred: pref, Partitions: []PartitionStatus{serving(0), following(1)}},
			{Node: "b", Preferred: pref, Partitions: []PartitionStatus{following(0), serving(1)}},
		}, true},
		{"a partition not yet steered back", []Status{
			{Node: "a", Preferred: pref, Partitions: []PartitionStatus{serving(0), serving(1)}},
			{Node: "b", Preferred: pref, Partitions: []PartitionStatus{following(0), following(1)}},
		}, false},
		{"a partition nobody serves", []Status{
			{Node: "a", Preferred: pref, Partitions: []PartitionStatus{serving(0), following(1)}},
		}, false},
		{"no ring placement", []Status{
			{Node: "a", Partitions: []PartitionStatus{serving(0)}},
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, why := Balanced(tt.statuses); got != tt.want {
				t.Fatalf("Balanced = %v (%s), want %v", got, why, tt.want)
			}
		})
	}
}
