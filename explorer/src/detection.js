// How likely a cheating run is caught, from the chain's verification parameters and a job's
// shape: the same rule as pallet-validation's `challenge.rs` (the last segment is always
// re-executed; of the others, the fewest are drawn, uniformly without replacement, so that a
// run that fakes `fraction` of them has one drawn with probability at least `probability`).
// Exact, in BigInt fixed point like the pallet, so that the page shows the count the chain draws.

const ONE = 10n ** 18n;
const PERBILL = 1_000_000_000n;

// ⌈fraction × n⌉ for a Perbill fraction (parts per billion), at least 1.
function faked(segments, fractionPerbill) {
  const parts = BigInt(fractionPerbill) * BigInt(segments);
  return Math.max(1, Number((parts + PERBILL - 1n) / PERBILL));
}

function missAllowed(probabilityPerbill) {
  return (PERBILL - BigInt(probabilityPerbill)) * PERBILL;
}

// The number of the other segments the pallet challenges in a run of `segments` of them.
export function challengesNeeded(segments, fractionPerbill, probabilityPerbill) {
  if (segments <= 0) return 0;
  const bad = faked(segments, fractionPerbill);
  const target = missAllowed(probabilityPerbill);
  let miss = ONE;
  for (let drawn = 0; drawn < segments; drawn += 1) {
    if (miss <= target) return drawn;
    const cleanLeft = BigInt(Math.max(0, segments - bad - drawn));
    const left = BigInt(Math.max(1, segments - drawn));
    miss = (miss * cleanLeft) / left;
  }
  return segments;
}

// The probability (0..1) that `drawn` of `segments` segments, drawn without replacement,
// include at least one of `bad` faked ones.
export function detectionProbability(segments, bad, drawn) {
  if (bad <= 0) return 0;
  let miss = 1;
  for (let i = 0; i < drawn; i += 1) {
    miss *= Math.max(0, segments - bad - i) / (segments - i);
  }
  return 1 - miss;
}

// What the page says about a job: its run has ⌈local_steps / checkpoint_interval⌉ segments;
// the last one plus `challenged` others are re-executed; a run faking at least `fraction` of
// the others is caught with probability `probability` (and always when it fakes the last).
export function jobDetection(localSteps, checkpointInterval, fractionPerbill, probabilityPerbill) {
  const segments = checkpointInterval > 0 ? Math.ceil(localSteps / checkpointInterval) : 0;
  const others = Math.max(0, segments - 1);
  const challenged = challengesNeeded(others, fractionPerbill, probabilityPerbill);
  const bad = others > 0 ? faked(others, fractionPerbill) : 0;
  return {
    segments,
    reexecuted: segments > 0 ? challenged + 1 : 0,
    fraction: fractionPerbill / 1e9,
    probability: others > 0 ? detectionProbability(others, bad, challenged) : 1,
    target: probabilityPerbill / 1e9,
  };
}
