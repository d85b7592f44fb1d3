import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    # Small tensors gain little from threads, and OpenMP workers spinning on a busy 2-core
    # machine can slow a module down tenfold.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
