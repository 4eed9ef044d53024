"""The count of a ranked poll (store/runoff.py), against published worked examples and by its
invariants.
"""

from aiohttpdemo_polls.store.runoff import count

MEMPHIS, NASHVILLE, CHATTANOOGA, KNOXVILLE = 1, 2, 3, 4


def test_tennessee_instant_runoff_elects_knoxville_while_nashville_beats_all():
    """Wikipedia, "Instant-runoff voting" and "Condorcet method": Tennessee's capital."""
    result = count(
        {
            (MEMPHIS, NASHVILLE, CHATTANOOGA, KNOXVILLE): 42,
            (NASHVILLE, CHATTANOOGA, KNOXVILLE, MEMPHIS): 26,
            (CHATTANOOGA, KNOXVILLE, NASHVILLE, MEMPHIS): 15,
            (KNOXVILLE, CHATTANOOGA, NASHVILLE, MEMPHIS): 17,
        },
        [MEMPHIS, NASHVILLE, CHATTANOOGA, KNOXVILLE],
        seed=1,
    )
    assert [r.votes for r in result.rounds] == [
        {MEMPHIS: 42, NASHVILLE: 26, CHATTANOOGA: 15, KNOXVILLE: 17},
        {MEMPHIS: 42, NASHVILLE: 26, KNOXVILLE: 32},
        {MEMPHIS: 42, KNOXVILLE: 58},
    ]
    assert result.winner == KNOXVILLE
    assert result.beats_all == NASHVILLE
