"""torch's one process-wide thread count: sessions hold it at 1 while any runs and give the caller's count back
when the last one ends, however they overlap."""
import torch

from affect_sdk.device import SingleThreadedTorch
from affect_sdk.session import Session, demo_clip


def test_overlapping_holders_restore_the_callers_count_only_at_the_end():
    threads = SingleThreadedTorch()
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        threads.hold()  # A starts
        threads.hold()  # B starts
        threads.release()  # A ends while B runs: B keeps one thread
        assert torch.get_num_threads() == 1
        threads.release()  # B ends: the caller's 3 again
        assert torch.get_num_threads() == 3
        threads.release()  # one release too many changes nothing
        assert torch.get_num_threads() == 3 and threads.holders == 0
    finally:
        torch.set_num_threads(before)


def test_overlapping_sessions_give_torch_its_thread_count_back():
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        first = Session(camera=demo_clip(), mic=None, fast=True)
        second = Session(camera=demo_clip(), mic=None, fast=True)
        assert torch.get_num_threads() == 1
        first.close()
        assert torch.get_num_threads() == 1  # the second session still runs
        second.close()
        second.close()  # closing twice releases once
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
