"""Who is asking: you in local mode; in shared mode a claimed name (its key kept in the URL) or st.login's user."""
from __future__ import annotations

import streamlit as st

from cnn_lab import identity
from cnn_lab.identity import LOCAL, Person
from cnn_lab.settings import load_settings


def signed_in() -> Person | None:
    """Who is asking, without asking: you in local mode; in shared mode st.login's user, or the person whose key
    the URL (or this tab) holds; None when nobody has signed in yet."""
    settings = load_settings()
    if not settings.shared:
        return LOCAL
    if settings.login:
        return identity.logged_in(st.user.email, settings.admins) if st.user.is_logged_in else None
    key = st.query_params.get("who") or st.session_state.get("who", "")
    person = identity.People().by_key(key)
    if person is not None:
        st.session_state["who"] = key
        if st.query_params.get("who") != key:  # kept in the URL, so a refresh is the same person
            st.query_params["who"] = key
        st.sidebar.caption(f"Signed in as **{person.name}**{' (admin)' if person.admin else ''}. This page's link "
                           "holds your key: bookmark it to find your jobs again, and sign out before you leave a "
                           "shared computer or show this screen on a projector.")
        st.sidebar.button("Sign out", key="sign_out", on_click=sign_out)
    return person


def sign_out() -> None:
    """Forget the key in this tab and its link: the person's bookmarked link still signs them in again."""
    st.session_state.pop("who", None)
    st.query_params.pop("who", None)


def who_is_asking() -> Person:
    """Local mode: you, who own every job. Shared mode: st.login's user (when CNN_LAB_LOGIN is on), or the name
    claimed with the key that the URL keeps; until then a sign-in form, and the page stops there."""
    person = signed_in()
    if person is not None:
        return person
    settings = load_settings()
    if settings.login:
        st.info("This is a shared server: log in to train, so that your jobs are yours.")
        st.button("Log in", on_click=st.login)
        st.stop()
    with st.form("sign_in"):
        st.markdown("**This is a shared server.** Give a name to own your jobs; the class sees it in the queue.")
        name = st.text_input("Your name")
        password = st.text_input("Admin password (leave it empty to join as a learner)", type="password")
        if st.form_submit_button("Join", type="primary"):
            try:
                person, key = identity.People().claim(name, password, settings.admin_password)
            except identity.IdentityError as error:
                st.error(str(error))
            else:
                st.session_state["who"] = st.query_params["who"] = key
                st.rerun()
    st.stop()


def preset_owner(person: Person | None) -> str | None:
    """Whose augmentation presets a page saves and offers: on a class server the person's own (besides those saved
    before shared mode), so that nobody saves over another's; in local mode the one person's: None."""
    return person.name if person is not None and load_settings().shared else None
