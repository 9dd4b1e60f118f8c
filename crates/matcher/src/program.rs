//! Rule conditions as flat programs: every rule's condition trees, with their search
//! identifiers expanded in place, as one contiguous array of operations in prefix order.
//!
//! The compiled [`Cond`] trees (boxes and vectors, one allocation per node) stay for the index
//! derivation; evaluation walks these instead, so that a candidate rule's whole condition sits
//! in a few adjacent cache lines rather than in a dozen scattered ones (the loads of the tree
//! nodes were the hottest instructions of rule evaluation).

use crate::compile::{CompiledDetection, CompiledRule, Cond};
use crate::NONE;

/// One operation. Compound operations hold the end of their subtree (the index after its
/// last operation), so that evaluation can skip the children it does not need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// The shared test with this id.
    Test(u32),
    /// Negates the subtree that follows (which ends at `end`).
    Not { end: u32 },
    /// All children hold (true when there are none).
    And { end: u32 },
    /// One child holds (false when there are none).
    Or { end: u32 },
    /// At least `n` children hold (counted as they are found).
    AtLeast { n: u32, end: u32 },
}

/// The programs of all rules of a set.
#[derive(Debug, Default)]
pub(crate) struct Programs {
    pub ops: Box<[Op]>,
    /// Per variant: its logsource condition ([`NONE`] for none) and the start of its
    /// program.
    pub variants: Box<[(u32, u32)]>,
    /// Per rule: its variants, `variants[first[r]..first[r + 1]]`.
    pub first: Box<[u32]>,
}

impl Programs {
    pub fn build(rules: &[CompiledRule]) -> Programs {
        let mut ops = Vec::new();
        let mut variants = Vec::new();
        let mut first = Vec::with_capacity(rules.len() + 1);
        for rule in rules {
            first.push(variants.len() as u32);
            for (cond, det) in &rule.variants {
                variants.push((cond.unwrap_or(NONE), ops.len() as u32));
                emit_cond(&det.cond, det, &mut ops);
            }
        }
        first.push(variants.len() as u32);
        Programs {
            ops: ops.into_boxed_slice(),
            variants: variants.into_boxed_slice(),
            first: first.into_boxed_slice(),
        }
    }

    /// The variants of rule `r`: (logsource condition or [`NONE`], program start).
    #[inline]
    pub fn of(&self, r: usize) -> &[(u32, u32)] {
        &self.variants[self.first[r] as usize..self.first[r + 1] as usize]
    }

    /// Evaluates the subtree that starts at `i`, with `test` deciding each test (children
    /// in order, stopping as soon as the result is known).
    pub fn eval(&self, i: usize, test: &mut impl FnMut(u32) -> bool) -> bool {
        match self.ops[i] {
            Op::Test(t) => test(t),
            Op::Not { .. } => !self.eval(i + 1, test),
            // All hold: no child is false.
            Op::And { end } => !self.found(i + 1, end, false, 1, test),
            Op::Or { end } => self.found(i + 1, end, true, 1, test),
            Op::AtLeast { n, end } => self.found(i + 1, end, true, n, test),
        }
    }

    /// Whether `need` of the children in `from..end` evaluate to `want` (counted in order,
    /// stopping at the `need`-th).
    fn found(
        &self,
        from: usize,
        end: u32,
        want: bool,
        need: u32,
        test: &mut impl FnMut(u32) -> bool,
    ) -> bool {
        let (mut j, mut count) = (from, 0);
        while j < end as usize {
            // Tests (most children) decided here, without a call of `eval` for each.
            let (held, next) = match self.ops[j] {
                Op::Test(t) => (test(t), j + 1),
                _ => (self.eval(j, test), self.end(j)),
            };
            if held == want {
                count += 1;
                if count >= need {
                    return true;
                }
            }
            j = next;
        }
        false
    }

    /// The end of the subtree that starts at `i`.
    #[inline]
    pub fn end(&self, i: usize) -> usize {
        match self.ops[i] {
            Op::Test(_) => i + 1,
            Op::Not { end } | Op::And { end } | Op::Or { end } | Op::AtLeast { end, .. } => {
                end as usize
            }
        }
    }
}

/// Emits a compound operation over the children `emit` writes, patching in its end.
fn compound(ops: &mut Vec<Op>, make: impl Fn(u32) -> Op, emit: impl FnOnce(&mut Vec<Op>)) {
    let at = ops.len();
    ops.push(make(0));
    emit(ops);
    let end = ops.len() as u32;
    ops[at] = make(end);
}

fn emit_search(det: &CompiledDetection, i: u32, ops: &mut Vec<Op>) {
    let alts = &det.searches[i as usize].alts;
    let emit_alt = |alt: &Vec<u32>, ops: &mut Vec<Op>| {
        if let [t] = alt[..] {
            ops.push(Op::Test(t));
        } else {
            compound(
                ops,
                |end| Op::And { end },
                |ops| {
                    ops.extend(alt.iter().map(|&t| Op::Test(t)));
                },
            );
        }
    };
    if let [alt] = &alts[..] {
        emit_alt(alt, ops);
    } else {
        compound(
            ops,
            |end| Op::Or { end },
            |ops| {
                for alt in alts {
                    emit_alt(alt, ops);
                }
            },
        );
    }
}

fn emit_cond(c: &Cond, det: &CompiledDetection, ops: &mut Vec<Op>) {
    // The children of a compound: conditions, or search identifiers.
    let conds = |xs: &[Cond], ops: &mut Vec<Op>| xs.iter().for_each(|x| emit_cond(x, det, ops));
    let searches = |ids: &[u32], ops: &mut Vec<Op>| {
        ids.iter().for_each(|i| emit_search(det, *i, ops));
    };
    match c {
        Cond::Id(i) => emit_search(det, *i, ops),
        Cond::Not(x) => compound(ops, |end| Op::Not { end }, |ops| emit_cond(x, det, ops)),
        Cond::And(xs) => compound(ops, |end| Op::And { end }, |ops| conds(xs, ops)),
        Cond::Or(xs) => compound(ops, |end| Op::Or { end }, |ops| conds(xs, ops)),
        Cond::All(ids) => compound(ops, |end| Op::And { end }, |ops| searches(ids, ops)),
        Cond::AtLeast(n, ids) => compound(
            ops,
            |end| Op::AtLeast { n: *n, end },
            |ops| searches(ids, ops),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::Search;

    fn det(searches: Vec<Vec<Vec<u32>>>, cond: Cond) -> CompiledDetection {
        CompiledDetection {
            searches: searches.into_iter().map(|alts| Search { alts }).collect(),
            cond,
        }
    }

    /// The tree evaluation the programs replace, over test results given as a bit set.
    fn tree(c: &Cond, d: &CompiledDetection, tests: u32) -> bool {
        let search = |i: u32| {
            d.searches[i as usize]
                .alts
                .iter()
                .any(|a| a.iter().all(|t| tests >> t & 1 == 1))
        };
        match c {
            Cond::Id(i) => search(*i),
            Cond::Not(x) => !tree(x, d, tests),
            Cond::And(xs) => xs.iter().all(|x| tree(x, d, tests)),
            Cond::Or(xs) => xs.iter().any(|x| tree(x, d, tests)),
            Cond::All(ids) => ids.iter().all(|i| search(*i)),
            Cond::AtLeast(n, ids) => {
                let mut count = 0;
                for i in ids {
                    if search(*i) {
                        count += 1;
                        if count >= *n {
                            return true;
                        }
                    }
                }
                false
            }
        }
    }

    #[test]
    fn programs_evaluate_like_trees() {
        // Searches: 0 = t0, 1 = t1 and t2, 2 = t3 or (t4 and t0), 3 = (nothing: false).
        let searches = vec![
            vec![vec![0]],
            vec![vec![1, 2]],
            vec![vec![3], vec![4, 0]],
            vec![],
        ];
        use Cond::*;
        let conds = vec![
            Id(0),
            Id(1),
            Id(2),
            Id(3),
            Not(Box::new(Id(2))),
            And(vec![Id(0), Not(Box::new(Id(1)))]),
            Or(vec![
                And(vec![Id(1), Id(2)]),
                Not(Box::new(Or(vec![Id(0), Id(3)]))),
            ]),
            All(vec![0, 1, 2]),
            AtLeast(1, vec![0, 1, 2, 3]),
            AtLeast(2, vec![0, 1, 2, 3]),
            AtLeast(3, vec![2, 0, 1]),
            And(vec![]),
            Or(vec![]),
            Not(Box::new(Not(Box::new(AtLeast(2, vec![1, 2]))))),
        ];
        let rules: Vec<CompiledRule> = conds
            .iter()
            .map(|c| CompiledRule {
                variants: vec![
                    (None, det(searches.clone(), c.clone())),
                    (Some(7), det(searches.clone(), Not(Box::new(c.clone())))),
                ],
            })
            .collect();
        let p = Programs::build(&rules);
        for (r, rule) in rules.iter().enumerate() {
            let vs = p.of(r);
            assert_eq!(vs.len(), 2);
            assert_eq!((vs[0].0, vs[1].0), (NONE, 7));
            for tests in 0..32u32 {
                for (k, (_, d)) in rule.variants.iter().enumerate() {
                    assert_eq!(
                        p.eval(vs[k].1 as usize, &mut |t| tests >> t & 1 == 1),
                        tree(&d.cond, d, tests),
                        "rule {r} variant {k} tests {tests:05b}"
                    );
                }
            }
        }
    }
}
