"""Checks one run of experiments/graph_matrix.yaml against its target.

    python3 bench/graph_matrix_check.py VALIDATE.txt LAYERS.csv RUN_ID GRANULARITY SPARSITY SCHEDULE

VALIDATE.txt is `prunelab validate` of the run's configuration (its pruning
groups: members, units, prunable or not), LAYERS.csv the report's layers.csv.
Expected units removed, computed here rather than taken from prunelab's plan:
  channel, oneshot/iterative: each prunable group loses round(s * units)
    channels (at most units - 1), within one unit; every member of a group
    loses the same channels; groups that are not prunable lose none;
  channel, global: the groups together lose round(s * total units), within
    one unit per group, and each keeps at least one;
  weight, oneshot/iterative: each conv2d/linear layer but the output layer
    has round(s * weights) weights masked, within one (the bundled graph
    models' convs have no bias, so a layer's params are its weights);
  weight, global: those layers together, within one weight per layer.
Prints "PASS <what>" or "FAIL <what>" and exits 0 or 1.
"""
import csv
import re
import sys


def main():
    vpath, lpath, run_id, gran, s, sched = sys.argv[1:7]
    s = float(s)
    rows = [r for r in csv.DictReader(open(lpath)) if r["run_id"] == run_id]
    if not rows:
        print(f"FAIL no rows for run {run_id} in {lpath}")
        return 1
    by = {r["layer"]: r for r in rows}
    bad = []
    if gran == "channel":
        groups = []  # (units, members, prunable)
        for line in open(vpath):
            m = re.match(r"\s*group \d+: (\d+) unit\(s\), members ([^;]+);(.*)", line)
            if m:
                members = [re.sub(r"\(.*\)$", "", t) for t in m.group(2).split()]
                groups.append((int(m.group(1)), members, "not prunable" not in m.group(3)))
        if not groups:
            print(f"FAIL no pruning groups in {vpath}")
            return 1

        def out_units(r, key):
            return int(r[key].split("x")[0])

        removed_total = want_total = units_total = 0
        n_prunable = 0
        for units, members, prunable in groups:
            lost = set()
            for mb in members:
                if mb not in by:
                    bad.append(f"{mb} missing from layers.csv")
                    continue
                lost.add(out_units(by[mb], "shape_before") - out_units(by[mb], "shape_after"))
            if len(lost) != 1:
                bad.append(f"group {'+'.join(members)}: members lost different channel counts {sorted(lost)}")
                continue
            k = lost.pop()
            if not prunable:
                if k:
                    bad.append(f"group {'+'.join(members)} is not prunable but lost {k}")
                continue
            n_prunable += 1
            removed_total += k
            units_total += units
            if k >= units:
                bad.append(f"group {'+'.join(members)} lost all {units} units")
            if sched != "global":
                want = min(round(s * units), units - 1)
                if abs(k - want) > 1:
                    bad.append(f"group {'+'.join(members)}: lost {k} of {units}, target {want}")
        want_total = round(s * units_total)
        if sched == "global" and abs(removed_total - want_total) > n_prunable:
            bad.append(f"groups lost {removed_total} of {units_total} channels, target {want_total} "
                       f"(tolerance {n_prunable})")
        what = f"{removed_total}/{units_total} channels in {n_prunable} groups (target {want_total})"
    else:
        wl = [r for r in rows if r["type"] in ("conv2d", "linear")]
        wl = wl[:-1]  # the output layer is never pruned
        removed_total = want_total = 0
        for r in wl:
            nw = int(r["params_before"])  # the bundled graph models' convs have no bias
            k = nw - int(r["nonzero_after"])
            want = round(s * nw)
            removed_total += k
            want_total += want
            if sched != "global" and abs(k - want) > 1:
                bad.append(f"{r['layer']}: {k} of {nw} weights masked, target {want}")
        if sched == "global" and abs(removed_total - want_total) > len(wl):
            bad.append(f"{removed_total} weights masked, target {want_total} (tolerance {len(wl)})")
        what = f"{removed_total} weights masked in {len(wl)} layers (target {want_total})"
    if bad:
        print("FAIL " + "; ".join(bad))
        return 1
    print("PASS " + what)
    return 0


if __name__ == "__main__":
    sys.exit(main())
