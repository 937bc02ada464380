"""tests/stack/listener.py: the counter that proves "no connection" must see every connection."""
import socket

from tests.stack.listener import CountingListener


def test_the_listener_counts_each_connection_and_closes_it_at_once():
    with CountingListener() as listener:
        assert listener.connections() == 0
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as client:
                assert client.recv(1) == b""  # closed by the listener, so a client fails fast
        assert listener.connections() == 3


def test_a_connection_is_counted_even_before_the_listener_thread_saw_it():
    with CountingListener() as listener, socket.create_connection(("127.0.0.1", listener.port), timeout=10):
        assert listener.connections() == 1
