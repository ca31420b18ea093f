"""planning.MotionWindow (executor_node's complete mode): the complete-mode busy window and the deadman's "moving"
flag, shared by the worker, the services and the deadman timer."""
import threading

from posevla_ros.logic.planning import MotionWindow


def test_busy_until_plan_end_plus_settle_and_for_older_images():
    w = MotionWindow()
    assert not w.busy(10.0, 10.0)
    w.start(now=10.0, duration_s=2.0, settle_s=0.5)
    assert w.busy(11.0, 11.0)                      # still executing
    assert not w.busy(12.6, 12.6)                  # over, and the image is newer
    assert w.busy(12.6, 12.4)                      # over, but the image predates the end
    w.clear()
    assert not w.busy(11.0, 11.0)                  # stop / resume end the held plan


def test_clock_jumping_back_clears_the_window():
    w = MotionWindow()
    w.start(now=100.0, duration_s=5.0, settle_s=0.0)
    assert not w.busy(1.0, 1.0)                    # sim reset: that plan is gone
    assert not w.busy(101.0, 101.0)


def test_moving_is_taken_once():
    w = MotionWindow()
    assert not w.take_moving()
    w.start(now=0.0, duration_s=1.0, settle_s=0.0)
    assert w.take_moving() and not w.take_moving()


def test_concurrent_start_clear_and_busy_leave_a_consistent_window():
    w = MotionWindow()
    stop = threading.Event()
    seen = []

    def worker():
        for i in range(2000):
            w.start(now=float(i), duration_s=1.0, settle_s=0.0)
            seen.append(w.busy(float(i), float(i)))

    def services():
        while not stop.is_set():
            w.clear()

    t = threading.Thread(target=services)
    t.start()
    worker()
    stop.set()
    t.join()
    w.clear()
    assert len(seen) == 2000 and not w.busy(0.5, 0.5)
    w.start(now=5.0, duration_s=1.0, settle_s=0.0)
    assert w.busy(5.5, 5.5)
