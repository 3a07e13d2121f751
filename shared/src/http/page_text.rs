//! The words of the hosted pages, in the languages we ship (`domain::locale`).
//!
//! A page's language: the `lang` of its link or form — the emails' links
//! carry the language the contact's emails fall back to (`App::claim_url_for`),
//! so the page follows the same locale — else the browser's `Accept-Language`
//! (a bare `/claim`), else the portal's `default_locale`; the first of these
//! we ship, else English.
//! `{email}`, `{minutes}` and `{portal}` are filled in where they appear.

use crate::domain::locale::{BuiltIn, Locale};

/// Every sentence a hosted page shows.
pub struct Texts {
    pub lang: &'static str,
    pub heading_link: &'static str,
    pub heading_code: &'static str,
    pub rejected: &'static str,
    pub intro_link: &'static str,
    pub intro_code: &'static str,
    pub code_label: &'static str,
    pub code_hint: &'static str,
    pub date_of_birth: &'static str,
    pub family_name: &'static str,
    pub postal_code: &'static str,
    pub as_on_record: &'static str,
    pub postal_hint: &'static str,
    pub optional_hint: &'static str,
    pub email_label: &'static str,
    pub email_hint: &'static str,
    pub email_error: &'static str,
    pub continue_button: &'static str,
    pub set_up_button: &'static str,
    pub link_used: (&'static str, &'static str),
    pub link_expired: (&'static str, &'static str),
    pub link_replaced: (&'static str, &'static str),
    pub link_locked: (&'static str, &'static str),
    pub link_invalid: (&'static str, &'static str),
    pub new_link_offer: &'static str,
    pub new_link_button: &'static str,
    pub no_address: (&'static str, &'static str),
    pub check_email: &'static str,
    pub sent_link: &'static str,
    pub open_it: &'static str,
    pub spam: &'static str,
    pub ready: &'static str,
    pub ready_notice: &'static str,
    pub ready_text: &'static str,
    pub too_many: (&'static str, &'static str),
    pub no_longer: (&'static str, &'static str),
    pub confirm_heading: &'static str,
    pub confirm_text: &'static str,
    pub confirm_button: &'static str,
    pub confirmation_closed: (&'static str, &'static str, &'static str),
    pub new_link_sent: (&'static str, &'static str),
    pub try_again: (&'static str, &'static str),
    pub footer: &'static str,
}

pub const ENGLISH: Texts = Texts {
    lang: "en",
    heading_link: "Set up your account",
    heading_code: "Set up your account with your code",
    rejected: "We could not accept these details. Check the code and the details you were asked for, and try again. \
               After several wrong tries a code is locked; the practice can send you a new one.",
    intro_link: "Enter your email address to finish setting up your account.",
    intro_code: "Enter the activation code you were given and your email address.",
    code_label: "Activation code",
    code_hint: "10 letters and numbers, for example ABCDE-23456",
    date_of_birth: "Date of birth",
    family_name: "Last name",
    postal_code: "Postal code",
    as_on_record: "As on your record",
    postal_hint: "The postal code on your record",
    optional_hint: "Only if you were asked for it",
    email_label: "Email address",
    email_hint: "Your account will use this address. If it is not the one we emailed, we send it a link to confirm.",
    email_error: "Enter an email address like name@example.com",
    continue_button: "Continue",
    set_up_button: "Set up my account",
    link_used: ("This link has already been used", "If you set up your account with it, sign in to the portal."),
    link_expired: ("This link has expired", "Links are valid for a limited time."),
    link_replaced: ("This link has been replaced", "A newer link was sent, or the practice cancelled this one."),
    link_locked: ("This link is locked", "It was locked after too many attempts with details that did not match."),
    link_invalid: ("This link is not valid", "Check that you opened the whole link from your email."),
    new_link_offer: "We can email a new link to the address the practice has on file for you.",
    new_link_button: "Email me a new link",
    no_address: ("We could not accept this request", "Your request reached us without a network address. Try again."),
    check_email: "Check your email",
    sent_link: "We sent a link to {email}.",
    open_it: "Open it on any device to finish setting up your account. It is valid for 24 hours.",
    spam: "If it does not arrive within a few minutes, check your spam folder, or start again.",
    ready: "Your account is ready",
    ready_notice: "Your account for {email} is set up.",
    ready_text: "You can now sign in to the portal with this email address.",
    too_many: ("Too many attempts", "There were too many attempts from your network. Try again in {minutes} minutes."),
    no_longer: ("This link can no longer be used", "It has been used, has expired or was replaced."),
    confirm_heading: "Confirm your email address",
    confirm_text: "Confirm to finish setting up your account for {email}.",
    confirm_button: "Confirm",
    confirmation_closed: (
        "This confirmation link can no longer be used",
        "It has been used, has expired (links are valid for 24 hours), or a newer one was sent.",
        "To set up your account, start again with your code or your activation link.",
    ),
    new_link_sent: (
        "If we can send you a new link, it is on its way to the email address the practice has on file for you.",
        "For your security we send it only to that address, and at most once an hour.",
    ),
    try_again: ("Please try again", "We could not finish this just now. Try again in a minute."),
    footer: "Secure account set-up for {portal}.",
};

pub const SPANISH: Texts = Texts {
    lang: "es",
    heading_link: "Cree su cuenta",
    heading_code: "Cree su cuenta con su código",
    rejected: "No pudimos aceptar estos datos. Compruebe el código y los datos que se le pidieron e inténtelo de nuevo. \
               Tras varios intentos fallidos el código se bloquea; el centro puede enviarle uno nuevo.",
    intro_link: "Introduzca su dirección de correo para terminar de crear su cuenta.",
    intro_code: "Introduzca el código de activación que recibió y su dirección de correo.",
    code_label: "Código de activación",
    code_hint: "10 letras y números, por ejemplo ABCDE-23456",
    date_of_birth: "Fecha de nacimiento",
    family_name: "Apellido",
    postal_code: "Código postal",
    as_on_record: "Como figura en su expediente",
    postal_hint: "El código postal de su expediente",
    optional_hint: "Solo si se lo pidieron",
    email_label: "Correo electrónico",
    email_hint: "Su cuenta usará esta dirección. Si no es a la que le escribimos, le enviaremos un enlace para confirmarla.",
    email_error: "Introduzca una dirección como nombre@ejemplo.com",
    continue_button: "Continuar",
    set_up_button: "Crear mi cuenta",
    link_used: ("Este enlace ya se ha usado", "Si creó su cuenta con él, inicie sesión en el portal."),
    link_expired: ("Este enlace ha caducado", "Los enlaces son válidos durante un tiempo limitado."),
    link_replaced: ("Este enlace se ha sustituido", "Se envió un enlace más reciente, o el centro canceló este."),
    link_locked: ("Este enlace está bloqueado", "Se bloqueó tras demasiados intentos con datos que no coincidían."),
    link_invalid: ("Este enlace no es válido", "Compruebe que abrió el enlace completo de su correo."),
    new_link_offer: "Podemos enviarle un enlace nuevo a la dirección que el centro tiene registrada.",
    new_link_button: "Enviarme un enlace nuevo",
    no_address: ("No pudimos aceptar esta solicitud", "Su solicitud nos llegó sin dirección de red. Inténtelo de nuevo."),
    check_email: "Revise su correo",
    sent_link: "Enviamos un enlace a {email}.",
    open_it: "Ábralo en cualquier dispositivo para terminar de crear su cuenta. Es válido durante 24 horas.",
    spam: "Si no llega en unos minutos, revise la carpeta de correo no deseado o empiece de nuevo.",
    ready: "Su cuenta está lista",
    ready_notice: "Su cuenta para {email} está creada.",
    ready_text: "Ya puede iniciar sesión en el portal con esta dirección de correo.",
    too_many: ("Demasiados intentos", "Hubo demasiados intentos desde su red. Inténtelo de nuevo en {minutes} minutos."),
    no_longer: ("Este enlace ya no se puede usar", "Se ha usado, ha caducado o se ha sustituido."),
    confirm_heading: "Confirme su dirección de correo",
    confirm_text: "Confirme para terminar de crear su cuenta para {email}.",
    confirm_button: "Confirmar",
    confirmation_closed: (
        "Este enlace de confirmación ya no se puede usar",
        "Se ha usado, ha caducado (los enlaces son válidos durante 24 horas) o se envió uno más reciente.",
        "Para crear su cuenta, empiece de nuevo con su código o su enlace de activación.",
    ),
    new_link_sent: (
        "Si podemos enviarle un enlace nuevo, va de camino a la dirección de correo que el centro tiene registrada.",
        "Por su seguridad solo lo enviamos a esa dirección, y como mucho una vez por hora.",
    ),
    try_again: ("Inténtelo de nuevo", "No pudimos terminar ahora mismo. Inténtelo de nuevo en un minuto."),
    footer: "Creación segura de cuenta para {portal}.",
};

impl Texts {
    pub fn of(language: BuiltIn) -> &'static Texts {
        match language {
            BuiltIn::English => &ENGLISH,
            BuiltIn::Spanish => &SPANISH,
        }
    }

    /// The page's language: the first of the link's or form's `lang`, the
    /// browser's `Accept-Language` and the portal's default that we ship.
    pub fn choose(lang: Option<&str>, accept_language: Option<&str>, portal_default: Option<&Locale>) -> &'static Texts {
        let chain: Vec<Locale> = [lang.and_then(|l| Locale::parse(l).ok()), accept_language.and_then(Locale::from_accept_language), portal_default.cloned()]
            .into_iter()
            .flatten()
            .collect();
        Self::of(BuiltIn::for_chain(&chain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_follows_the_link_then_the_browser_then_the_portal() {
        let es = Locale::parse("es").unwrap();
        assert_eq!(Texts::choose(Some("es-MX"), Some("en-US"), None).lang, "es");
        assert_eq!(Texts::choose(None, Some("es-ES,es;q=0.9"), None).lang, "es");
        assert_eq!(Texts::choose(None, Some("fr-FR"), Some(&es)).lang, "es", "a language we do not ship falls through");
        assert_eq!(Texts::choose(Some("nonsense!"), None, None).lang, "en");
        assert_eq!(Texts::choose(None, None, None).lang, "en");
    }
}
